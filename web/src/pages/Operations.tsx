// Everyone: recent operations (exports, replication, publishing, uploads) with
// their progress, result and error; refreshed while any is running.
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { listOperations, subscription } from '../api.js';
import { dateTime, named } from '../i18n.js';

export function OperationsPage() {
  const { t, i18n } = useTranslation();
  const sub = useQuery({ queryKey: ['subscription'], queryFn: subscription });
  const ops = useQuery({
    queryKey: ['operations', sub.data],
    queryFn: () => listOperations(sub.data as string),
    enabled: Boolean(sub.data),
    refetchInterval: (q) => (q.state.data?.some((o) => o.status === 'InProgress') ? 2_000 : 15_000),
  });
  return (
    <section aria-labelledby="ops">
      <h1 id="ops">{t('operations.title')}</h1>
      {ops.data?.length === 0 && <p className="empty">{t('operations.empty')}</p>}
      {Boolean(ops.data?.length) && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t('operations.kind')}</th>
              <th scope="col">{t('operations.resource')}</th>
              <th scope="col">{t('operations.status')}</th>
              <th scope="col">{t('operations.started')}</th>
            </tr>
          </thead>
          <tbody>
            {ops.data?.map((o) => (
              <tr key={o.name}>
                <td>{o.properties.kind}</td>
                <td>{o.properties.resourceId.split('/').slice(-3).join('/')}</td>
                <td>
                  {o.status === 'InProgress' ? (
                    <progress max={100} value={o.percentComplete ?? 0} aria-label={`${o.percentComplete ?? 0}%`} />
                  ) : (
                    named(t, 'operations.statuses', o.status)
                  )}{' '}
                  {o.error ? <span className="error">{o.error.message}</span> : o.properties.statusMessage !== o.status ? o.properties.statusMessage : ''}
                </td>
                <td>{o.startTime ? dateTime(o.startTime, i18n.language) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
