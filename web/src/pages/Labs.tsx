import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { listLabs, subscription } from '../api.js';
import { named } from '../i18n.js';

export function LabsPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: ['subscription'], queryFn: subscription });
  const labs = useQuery({ queryKey: ['labs', sub.data], queryFn: () => listLabs(sub.data as string), enabled: Boolean(sub.data) });
  return (
    <section aria-labelledby="labs">
      <h1 id="labs">{t('labs.title')}</h1>
      <p>
        <Link to="/labs/new">{t('newLab.open')}</Link>
      </p>
      {labs.isError && <p role="alert">{t('errors.generic', { message: (labs.error as Error).message })}</p>}
      {labs.data?.length === 0 && <p className="empty">{t('labs.empty')}</p>}
      {Boolean(labs.data?.length) && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t('labs.name')}</th>
              <th scope="col">{t('labs.state')}</th>
              <th scope="col">{t('labs.image')}</th>
              <th scope="col">{t('labs.seats')}</th>
            </tr>
          </thead>
          <tbody>
            {labs.data?.map((l) => (
              <tr key={l.id}>
                <td>
                  <Link to={`/labs/${l.id.split('/')[4]}/${l.name}`}>{l.properties.title ?? l.name}</Link>
                </td>
                <td>{named(t, 'labs.states', l.properties.state)}</td>
                <td>
                  {l.properties.virtualMachineProfile.imageReference.id.split('/').pop()} {l.properties.virtualMachineProfile.imageReference.exactVersion}
                </td>
                <td>{l.properties.virtualMachineProfile.sku.capacity}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
