// Everyone: recent operations (exports, replication, publishing, uploads) with
// their progress, result and error; refreshed while any is running.
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { queryKeys } from '../api/keys.js';
import { listOperations } from '../api/operations.js';
import { subscription } from '../api/session.js';
import { DataTable } from '../components/DataTable.js';
import { QueryList } from '../components/QueryList.js';
import { dateTime, named } from '../i18n.js';

export function OperationsPage() {
  const { t, i18n } = useTranslation();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const ops = useQuery({
    queryKey: queryKeys.operations(sub.data),
    queryFn: () => listOperations(sub.data as string),
    enabled: Boolean(sub.data),
    refetchInterval: (q) => (q.state.data?.some((o) => o.status === 'InProgress') ? 2_000 : 15_000),
  });
  return (
    <section aria-labelledby="ops">
      <h1 id="ops">{t('operations.title')}</h1>
      <QueryList query={ops} empty={t('operations.empty')}>
        {(rows) => (
          <DataTable
            rows={rows}
            rowKey={(o) => o.name}
            columns={[
              { key: 'kind', header: t('operations.kind'), cell: (o) => o.properties.kind },
              { key: 'resource', header: t('operations.resource'), cell: (o) => (o.properties.resourceId ?? '').split('/').slice(-3).join('/') },
              {
                key: 'status',
                header: t('operations.status'),
                cell: (o) => (
                  <>
                    {o.status === 'InProgress' ? (
                      <progress max={100} value={o.percentComplete ?? 0} aria-label={`${o.percentComplete ?? 0}%`} />
                    ) : (
                      named(t, 'operations.statuses', o.status)
                    )}{' '}
                    {o.error ? <span className="error">{o.error.message}</span> : o.properties.statusMessage !== o.status ? o.properties.statusMessage : ''}
                  </>
                ),
              },
              { key: 'started', header: t('operations.started'), cell: (o) => (o.startTime ? dateTime(o.startTime, i18n.language) : '') },
            ]}
          />
        )}
      </QueryList>
    </section>
  );
}
