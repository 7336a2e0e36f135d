// Galleries, image definitions and versions: listing, uploading a disk into a
// version, the "latest" switch, deleting, and the image stores' usage (admins).
import { get, operationOf, send, start } from './transport.js';
import { API_VERSIONS, type Gallery, type ImageDef, type List, type Usage, type Version } from './types.js';

const V = API_VERSIONS.compute;

export const listGalleries = async (sub: string) => (await get<List<Gallery>>(`/subscriptions/${sub}/providers/Microsoft.Compute/galleries`, V)).value;
export const listImageDefs = async (galleryId: string) => (await get<List<ImageDef>>(`${galleryId}/images`, V)).value;

/** Creates an image definition for uploaded disks. */
export const createImageDef = (gallery: Gallery, name: string, p: { osType: string; osState: string; sku: string }) =>
  send('PUT', `${gallery.id}/images/${name}`, V, {
    location: gallery.location,
    properties: { osType: p.osType, osState: p.osState, identifier: { publisher: 'upload', offer: name, sku: p.sku } },
  });

/** Creates a version from an uploaded disk; returns the URL of the import's operation. */
export const createVersionFromUpload = async (gallery: Gallery, image: string, version: string, uploadUrl: string) =>
  operationOf(
    await start('PUT', `${gallery.id}/images/${image}/versions/${version}`, V, {
      location: gallery.location,
      properties: { storageProfile: { osDiskImage: { source: { uri: uploadUrl } } } },
    }),
  );

export const listVersions = async (imageId: string) => (await get<List<Version>>(`${imageId}/versions?$expand=ReplicationStatus`, V)).value;
export const setExcludeFromLatest = (versionId: string, exclude: boolean) =>
  send<Version>('PATCH', versionId, V, { properties: { publishingProfile: { excludeFromLatest: exclude } } });
export const deleteVersion = (versionId: string) => send('DELETE', versionId, V);

/** Stored and unique bytes and monthly cost per version and region (admins). */
export const usage = (sub: string) => get<Usage>(`/subscriptions/${sub}/providers/Labforge.Core/imageStores/usage`, API_VERSIONS.labforge);
