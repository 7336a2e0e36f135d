// Galleries, their image definitions and versions: regions with replication
// state and a live progress bar, size, stored and unique bytes and monthly
// cost (admins), "latest" switch, and delete with a confirmation (the server
// refuses a version VMs still use, naming them).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { TFunction } from 'i18next';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { deleteVersion, listGalleries, listImageDefs, listVersions, setExcludeFromLatest, usage } from '../api/gallery.js';
import { queryKeys } from '../api/keys.js';
import { subscription, whoami } from '../api/session.js';
import type { Gallery, ImageDef, UsageRow, Version } from '../api/types.js';
import { DataTable } from '../components/DataTable.js';
import { QueryList } from '../components/QueryList.js';
import { toast } from '../components/Toasts.js';
import { UploadForm } from '../components/Upload.js';
import { named } from '../i18n.js';

const mib = (t: TFunction, n: number) => (n >= 2 ** 30 ? t('units.gib', { n: (n / 2 ** 30).toFixed(2) }) : t('units.mib', { n: (n / 2 ** 20).toFixed(1) }));

export function GalleryPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const me = useQuery({ queryKey: queryKeys.whoami, queryFn: whoami });
  const galleries = useQuery({ queryKey: queryKeys.galleries(sub.data), queryFn: () => listGalleries(sub.data as string), enabled: Boolean(sub.data) });
  const use = useQuery({
    queryKey: queryKeys.usage(sub.data),
    queryFn: () => usage(sub.data as string),
    enabled: Boolean(sub.data) && me.data?.role === 'admin',
  });
  return (
    <section aria-labelledby="gallery">
      <h1 id="gallery">{t('gallery.title')}</h1>
      <QueryList query={galleries} empty={t('gallery.empty')}>
        {(rows) => rows.map((g) => <GalleryCard key={g.id} gallery={g} usage={use.data?.versions} />)}
      </QueryList>
    </section>
  );
}

function GalleryCard({ gallery, usage: rows }: { gallery: Gallery; usage: UsageRow[] | undefined }) {
  const { t } = useTranslation();
  const images = useQuery({ queryKey: queryKeys.imageDefs(gallery.id), queryFn: () => listImageDefs(gallery.id) });
  return (
    <article className="card" aria-labelledby={`g-${gallery.name}`}>
      <h2 id={`g-${gallery.name}`}>
        {gallery.name} <small>({gallery.location})</small>
      </h2>
      <QueryList query={images} empty={t('galleryPage.noImages')} frame>
        {(defs) => (
          <>
            <UploadForm gallery={gallery} images={defs} />
            {defs.map((i) => (
              <ImageVersions key={i.id} gallery={gallery} image={i} usage={rows} />
            ))}
          </>
        )}
      </QueryList>
    </article>
  );
}

function ImageVersions({ gallery, image, usage: rows }: { gallery: Gallery; image: ImageDef; usage: UsageRow[] | undefined }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [open, setOpen] = useState(false);
  const versions = useQuery({
    queryKey: queryKeys.versions.of(image.id),
    queryFn: () => listVersions(image.id),
    enabled: open,
    // While a replication runs, its progress bar moves.
    refetchInterval: (q) => (q.state.data?.some((v) => v.properties.replicationStatus?.aggregatedState === 'InProgress') ? 2_000 : false),
  });
  const refresh = () => void queries.invalidateQueries({ queryKey: queryKeys.versions.of(image.id) });
  const exclude = useMutation({
    mutationFn: ({ id, value }: { id: string; value: boolean }) => setExcludeFromLatest(id, value),
    // The switch moves at once; the list is read again when the server has answered.
    onMutate: ({ id, value }) =>
      queries.setQueryData<Version[]>(queryKeys.versions.of(image.id), (old) =>
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
  /** The usage report's rows of a version (admins; one per region). */
  const usageOf = (v: Version) => rows?.filter((r) => r.gallery === gallery.name && r.image === image.name && r.version === v.name) ?? [];
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>
        {image.name} — {image.properties.osType}, {named(t, 'osStates', image.properties.osState)}
      </summary>
      <QueryList query={versions} empty={t('galleryPage.noVersions')}>
        {(list) => (
          <DataTable
            rows={list}
            rowKey={(v) => v.id}
            columns={[
              {
                key: 'version',
                header: t('galleryPage.version'),
                cell: (v) => (
                  <>
                    {v.name}{' '}
                    {v.properties.provisioningState !== 'Succeeded' ? `(${named(t, 'galleryPage.provisioningStates', v.properties.provisioningState)})` : ''}
                  </>
                ),
              },
              {
                key: 'regions',
                header: t('galleryPage.regions'),
                cell: (v) =>
                  v.properties.replicationStatus?.summary.map((r) => (
                    <div key={r.region}>
                      {r.region}: {named(t, 'galleryPage.replicationStates', r.state)}{' '}
                      {r.state === 'Replicating' && <progress max={100} value={r.progress} aria-label={`${r.region} ${r.progress}%`} />}
                    </div>
                  )),
              },
              { key: 'size', header: t('galleryPage.size'), cell: (v) => t('units.gb', { n: v.properties.storageProfile.osDiskImage?.sizeInGB ?? '?' }) },
              Boolean(rows) && {
                key: 'stored',
                header: t('galleryPage.stored'),
                cell: (v) =>
                  usageOf(v)
                    .map((r) => `${r.region}: ${mib(t, r.storedBytes)} / ${mib(t, r.uniqueBytes)}`)
                    .join(', ') || '—',
              },
              Boolean(rows) && {
                key: 'cost',
                header: t('galleryPage.cost'),
                cell: (v) =>
                  usageOf(v)
                    .reduce((n, r) => n + r.monthlyCost, 0)
                    .toFixed(2),
              },
              {
                key: 'latest',
                header: t('galleryPage.latest'),
                cell: (v) => (
                  <input
                    type="checkbox"
                    aria-label={t('galleryPage.exclude', { version: v.name })}
                    checked={!v.properties.publishingProfile.excludeFromLatest}
                    onChange={(e) => exclude.mutate({ id: v.id, value: !e.target.checked })}
                  />
                ),
              },
              {
                key: 'delete',
                cell: (v) => (
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
                ),
              },
            ]}
          />
        )}
      </QueryList>
    </details>
  );
}
