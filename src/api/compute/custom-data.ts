// customData of VMs and labs (as on Azure VMs): base64 of a #cloud-config document.
import { invalidParameter } from '../../errors.js';

/** The document a request's customData holds; a 400 naming the field when it is not base64. */
export function decodeCustomData(b64: string | undefined, field = 'properties.osProfile.customData'): string | undefined {
  if (b64 === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw invalidParameter('customData must be base64-encoded (as in Azure). Encode the #cloud-config document with base64 -w0.', field);
  }
  return Buffer.from(b64, 'base64').toString('utf8');
}
