// Uploading a disk from the browser: resumable (tus, the same protocol the CLI
// uses), then the version is created from the upload; the inspector's refusal
// is shown as the server wrote it.
import { useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Upload } from 'tus-js-client';
import { createImageDef, createVersionFromUpload } from '../api/gallery.js';
import { queryKeys } from '../api/keys.js';
import { ApiError, follow, session } from '../api/transport.js';
import type { Gallery, ImageDef } from '../api/types.js';
import { toast } from './Toasts.js';

export function UploadForm({ gallery, images }: { gallery: Gallery; images: ImageDef[] }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [image, setImage] = useState('');
  const [newName, setNewName] = useState('');
  const [osType, setOsType] = useState('Linux');
  const [osState, setOsState] = useState('Specialized');
  const [version, setVersion] = useState('1.0.0');
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const upload = (f: File) =>
    new Promise<string>((resolve, reject) => {
      const u = new Upload(f, {
        endpoint: '/uploads',
        headers: { authorization: `Bearer ${session.token}` },
        chunkSize: 8 * 1024 * 1024,
        retryDelays: [0, 1000, 3000],
        metadata: { filename: f.name },
        onProgress: (sent, total) => setStatus(t('upload.uploading', { percent: Math.floor((100 * sent) / total) })),
        onError: (err) => reject(err),
        onSuccess: () => resolve(u.url as string),
      });
      // Resume an upload of the same file that was interrupted.
      void u.findPreviousUploads().then((previous) => {
        if (previous[0]) u.resumeFromPreviousUpload(previous[0]);
        u.start();
      });
    });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      let name = image;
      if (!name) {
        name = newName;
        await createImageDef(gallery, name, { osType, osState, sku: version });
      }
      const uri = await upload(file);
      const operation = await createVersionFromUpload(gallery, name, version, new URL(uri, location.origin).href);
      const op = await follow(operation, (p) => setStatus(t('upload.importing', { percent: p })));
      if (op.status !== 'Succeeded') throw new ApiError(400, op.error?.code ?? 'Failed', op.error?.message ?? op.status);
      const done = t('upload.done', { version, image: name });
      setStatus(done);
      toast(done);
      void queries.invalidateQueries({ queryKey: queryKeys.imageDefs(gallery.id) });
      void queries.invalidateQueries({ queryKey: queryKeys.versions.all });
    } catch (err) {
      setStatus(null);
      setError(err instanceof ApiError ? err.message : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details>
      <summary>{t('upload.title')}</summary>
      <form onSubmit={submit} className="wizard">
        <label>
          {t('upload.file')}
          <input type="file" required accept=".vhd,.vhdx,.qcow2,.raw,.img,.vmdk" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <p className="help">{t('upload.resumes')}</p>
        <label>
          {t('upload.image')}
          <select value={image} onChange={(e) => setImage(e.target.value)}>
            <option value="">{t('upload.newImage')}</option>
            {images.map((i) => (
              <option key={i.id} value={i.name}>
                {i.name}
              </option>
            ))}
          </select>
        </label>
        {!image && (
          <>
            <label>
              {t('upload.newName')}
              <input required value={newName} onChange={(e) => setNewName(e.target.value)} />
            </label>
            <label>
              {t('upload.osType')}
              <select value={osType} onChange={(e) => setOsType(e.target.value)}>
                <option>Linux</option>
                <option>Windows</option>
              </select>
            </label>
            <label>
              {t('upload.osState')}
              <select value={osState} onChange={(e) => setOsState(e.target.value)}>
                <option value="Specialized">{t('osStates.Specialized')}</option>
                <option value="Generalized">{t('osStates.Generalized')}</option>
              </select>
            </label>
          </>
        )}
        <label>
          {t('upload.version')}
          <input required pattern="\d+\.\d+\.\d+" value={version} onChange={(e) => setVersion(e.target.value)} />
        </label>
        {status && <p role="status">{status}</p>}
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || !file}>
          {t('upload.submit')}
        </button>
      </form>
    </details>
  );
}
