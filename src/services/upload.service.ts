// Uploaded disk files (tus protocol) waiting to be imported into a version.
// The files live in `<dataDir>/uploads`; each upload records its owner, so
// only the uploader (or an admin) can continue it or import it.
import { join } from 'node:path';
import { FileStore } from '@tus/file-store';
import { LabforgeError } from '../errors.js';
import type { Principal } from './common.js';

export interface UploadInfo {
  id: string;
  size: number | undefined;
  offset: number;
  owner: string | undefined;
  filename: string | undefined;
  /** Path of the uploaded bytes on this host. */
  path: string;
  complete: boolean;
}

const UPLOAD_ID = /^[a-f0-9]{32}$/;

export class UploadService {
  readonly directory: string;
  readonly datastore: FileStore;

  constructor(dataDir: string) {
    this.directory = join(dataDir, 'uploads');
    this.datastore = new FileStore({ directory: this.directory });
  }

  /** Extracts the upload id from an upload URL (absolute, or a path ending in /uploads/<id>). */
  static idFromUri(uri: string): string | undefined {
    const path = /^https?:\/\//.test(uri) ? new URL(uri).pathname : uri;
    const m = /\/uploads\/([a-f0-9]{32})\/?$/.exec(path);
    return m?.[1];
  }

  async get(id: string): Promise<UploadInfo | undefined> {
    if (!UPLOAD_ID.test(id)) return undefined;
    try {
      const u = await this.datastore.getUpload(id);
      return {
        id,
        size: u.size,
        offset: u.offset,
        owner: u.metadata?.owner ?? undefined,
        filename: u.metadata?.filename ?? undefined,
        path: join(this.directory, id),
        complete: u.size !== undefined && u.offset === u.size,
      };
    } catch {
      return undefined;
    }
  }

  /** Resolves an upload URL for an import by `p`, refusing unknown, unfinished or foreign uploads. */
  async requireForImport(p: Principal, uri: string, field: string): Promise<UploadInfo> {
    const id = UploadService.idFromUri(uri);
    const u = id ? await this.get(id) : undefined;
    if (!u) {
      throw new LabforgeError(
        400,
        'InvalidParameter',
        `'${uri}' is not an upload on this server. Upload the disk first (POST /uploads with the tus protocol, or \`labforge version create --file\`), then use the upload's URL.`,
        field,
      );
    }
    if (p.role !== 'admin' && u.owner !== p.subject) throw new LabforgeError(403, 'AuthorizationFailed', `Upload ${u.id} belongs to someone else.`, field);
    if (!u.complete) {
      throw new LabforgeError(
        409,
        'UploadIncomplete',
        `Upload ${u.id} has ${u.offset} of ${u.size ?? 'an unknown number of'} bytes. Finish the upload (it can be resumed), then retry.`,
        field,
      );
    }
    return u;
  }

  async delete(id: string): Promise<void> {
    if (!UPLOAD_ID.test(id)) return;
    await this.datastore.remove(id).catch(() => undefined);
  }
}
