import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { listGalleries, subscription } from '../api.js';

export function GalleryPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: ['subscription'], queryFn: subscription });
  const galleries = useQuery({ queryKey: ['galleries', sub.data], queryFn: () => listGalleries(sub.data as string), enabled: Boolean(sub.data) });
  return (
    <section aria-labelledby="gallery">
      <h1 id="gallery">{t('gallery.title')}</h1>
      {galleries.isError && <p role="alert">{t('errors.generic', { message: (galleries.error as Error).message })}</p>}
      {galleries.data?.length === 0 && <p className="empty">{t('gallery.empty')}</p>}
      <ul>
        {galleries.data?.map((g) => (
          <li key={g.id}>
            {g.name} — {g.location}
          </li>
        ))}
      </ul>
    </section>
  );
}
