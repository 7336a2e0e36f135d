// Labs (lab staff): each lab with its state, image and seats, and "Create a lab".
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { queryKeys } from '../api/keys.js';
import { listLabs } from '../api/labs.js';
import { subscription } from '../api/session.js';
import { DataTable } from '../components/DataTable.js';
import { QueryList } from '../components/QueryList.js';
import { named } from '../i18n.js';

export function LabsPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const labs = useQuery({ queryKey: queryKeys.labs.list(sub.data), queryFn: () => listLabs(sub.data as string), enabled: Boolean(sub.data) });
  return (
    <section aria-labelledby="labs">
      <h1 id="labs">{t('labs.title')}</h1>
      <p>
        <Link to="/labs/new">{t('newLab.open')}</Link>
      </p>
      <QueryList query={labs} empty={t('labs.empty')}>
        {(rows) => (
          <DataTable
            rows={rows}
            rowKey={(l) => l.id}
            columns={[
              { key: 'name', header: t('labs.name'), cell: (l) => <Link to={`/labs/${l.id.split('/')[4]}/${l.name}`}>{l.properties.title ?? l.name}</Link> },
              { key: 'state', header: t('labs.state'), cell: (l) => named(t, 'labs.states', l.properties.state) },
              {
                key: 'image',
                header: t('labs.image'),
                cell: (l) => (
                  <>
                    {l.properties.virtualMachineProfile.imageReference.id.split('/').pop()} {l.properties.virtualMachineProfile.imageReference.exactVersion}
                  </>
                ),
              },
              { key: 'seats', header: t('labs.seats'), cell: (l) => l.properties.virtualMachineProfile.sku.capacity },
            ]}
          />
        )}
      </QueryList>
    </section>
  );
}
