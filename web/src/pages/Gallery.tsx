// Galleries, their image definitions and versions: regions with replication
// state and a live progress bar, size, stored and unique bytes and monthly
// cost (admins), "latest" switch, and delete with a confirmation (the server
// refuses a version VMs still use, naming them).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { TFunction } from 'i18next';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import {
  deleteVersion,
  type Gallery,
  type ImageDef,
  listGalleries,
  listImageDefs,
  listVersions,
  setExcludeFromLatest,
  subscription,
  type UsageRow,
  usage,
  type Version,
  whoami,
} from '../api.js';
import { named } from '../i18n.js';
import { toast } from '../Toasts.js';
import { UploadForm } from '../Upload.js';

const mib = (t: TFunction, n: number) => (n >= 2 ** 30 ? t('units.gib', { n: (n / 2 ** 30).toFixed(2) }) : t('units.mib', { n: (n / 2 ** 20).toFixed(1) }));

export function GalleryPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: ['subscription'], queryFn: subscription });
  const me = useQuery({ queryKey: ['whoami'], queryFn: whoami });
  const galleries = useQuery({ queryKey: ['galleries', sub.data], queryFn: () => listGalleries(sub.data as string), enabled: Boolean(sub.data) });
  const use = useQuery({ queryKey: ['usage', sub.data], queryFn: () => usage(sub.data as string), enabled: Boolean(sub.data) && me.data?.role === 'admin' });
  return (
    <section aria-labelledby="gallery">
      <h1 id="gallery">{t('gallery.title')}</h1>
      {galleries.isError && <p role="alert">{t('errors.generic', { message: (galleries.error as Error).message })}</p>}
      {galleries.data?.length === 0 && <p className="empty">{t('gallery.empty')}</p>}
      {galleries.data?.map((g) => (
        <GalleryCard key={g.id} gallery={g} usage={use.data?.versions} />
      ))}
    </section>
  );
}

function GalleryCard({ gallery, usage: rows }: { gallery: Gallery; usage: UsageRow[] | undefined }) {
  const { t } = useTranslation();
  const images = useQuery({ queryKey: ['image-defs', gallery.id], queryFn: () => listImageDefs(gallery.id) });
  return (
    <article className="card" aria-labelledby={`g-${gallery.name}`}>
      <h2 id={`g-${gallery.name}`}>
        {gallery.name} <small>({gallery.location})</small>
      </h2>
      {images.data?.length === 0 && <p className="empty">{t('galleryPage.noImages')}</p>}
      <UploadForm gallery={gallery} images={images.data ?? []} />
      {images.data?.map((i) => (
        <ImageVersions key={i.id} gallery={gallery} image={i} usage={rows} />
      ))}
    </article>
  );
}

function ImageVersions({ gallery, image, usage: rows }: { gallery: Gallery; image: ImageDef; usage: UsageRow[] | undefined }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [open, setOpen] = useState(false);
  const versions = useQuery({
    queryKey: ['versions', image.id],
    queryFn: () => listVersions(image.id),
    enabled: open,
    // While a replication runs, its progress bar moves.
    refetchInterval: (q) => (q.state.data?.some((v) => v.properties.replicationStatus?.aggregatedState === 'InProgress') ? 2_000 : false),
  });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['versions', image.id] });
  const exclude = useMutation({
    mutationFn: ({ id, value }: { id: string; value: boolean }) => setExcludeFromLatest(id, value),
    // The switch moves at once; the list is read again when the server has answered.
    onMutate: ({ id, value }) =>
      queries.setQueryData<Version[]>(['versions', image.id], (old) =>
        old?.map((v) =>
          v.id === id ? { ...v, properties: { ...v.properties, publishingProfile: { ...v.properties.publishingProfile, excludeFromLatest: value } } } : v,
        ),
      ),
    onSuccess: refresh,
    onError: (e) => toast(t('errors.generic', { message: (e as Error).message }), 'error'),
  });
  const remove = useMutation({
    mutationFn: (id: string) => deleteVersion(id),
    onSuccess: (_r, id) => {
      toast(t('galleryPage.deleted', { version: id.split('/').pop() }));
      refresh();
    },
    onError: (e) => toast((e as Error).message, 'error'),
  });
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>
        {image.name} — {image.properties.osType}, {named(t, 'osStates', image.properties.osState)}
      </summary>
      {versions.data?.length === 0 && <p className="empty">{t('galleryPage.noVersions')}</p>}
      {Boolean(versions.data?.length) && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t('galleryPage.version')}</th>
              <th scope="col">{t('galleryPage.regions')}</th>
              <th scope="col">{t('galleryPage.size')}</th>
              {rows && <th scope="col">{t('galleryPage.stored')}</th>}
              {rows && <th scope="col">{t('galleryPage.cost')}</th>}
              <th scope="col">{t('galleryPage.latest')}</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {versions.data?.map((v) => {
              const u = rows?.filter((r) => r.gallery === gallery.name && r.image === image.name && r.version === v.name) ?? [];
              return (
                <tr key={v.id}>
                  <td>
                    {v.name}{' '}
                    {v.properties.provisioningState !== 'Succeeded' ? `(${named(t, 'galleryPage.provisioningStates', v.properties.provisioningState)})` : ''}
                  </td>
                  <td>
                    {v.properties.replicationStatus?.summary.map((r) => (
                      <div key={r.region}>
                        {r.region}: {named(t, 'galleryPage.replicationStates', r.state)}{' '}
                        {r.state === 'Replicating' && <progress max={100} value={r.progress} aria-label={`${r.region} ${r.progress}%`} />}
                      </div>
                    ))}
                  </td>
                  <td>{t('units.gb', { n: v.properties.storageProfile.osDiskImage?.sizeInGB ?? '?' })}</td>
                  {rows && <td>{u.map((r) => `${r.region}: ${mib(t, r.storedBytes)} / ${mib(t, r.uniqueBytes)}`).join(', ') || '—'}</td>}
                  {rows && <td>{u.reduce((n, r) => n + r.monthlyCost, 0).toFixed(2)}</td>}
                  <td>
                    <input
                      type="checkbox"
                      aria-label={t('galleryPage.exclude', { version: v.name })}
                      checked={!v.properties.publishingProfile.excludeFromLatest}
                      onChange={(e) => exclude.mutate({ id: v.id, value: !e.target.checked })}
                    />
                  </td>
                  <td>
                    <button
                      type="button"
                      onClick={() => {
                        const used = v.properties.usedBy ?? [];
                        if (used.length) window.alert(t('galleryPage.inUse', { version: v.name, users: used.join('; ') }));
                        else if (window.confirm(t('galleryPage.deleteConfirm', { version: v.name, image: image.name }))) remove.mutate(v.id);
                      }}
                    >
                      {t('galleryPage.delete')}
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </details>
  );
}
