// Hosts (lab staff): each hypervisor host, how it runs VMs (KVM where the
// probe proved it works, software emulation otherwise) and why, its VMs; admins
// can have KVM checked again.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { checkHost, listHosts } from '../api/hosts.js';
import { queryKeys } from '../api/keys.js';
import { DataTable } from '../components/DataTable.js';
import { QueryList } from '../components/QueryList.js';
import { toast } from '../components/Toasts.js';

export function HostsPage({ admin }: { admin: boolean }) {
  const { t, i18n } = useTranslation();
  const queries = useQueryClient();
  const hosts = useQuery({ queryKey: queryKeys.hosts, queryFn: listHosts });
  const check = useMutation({
    mutationFn: (name: string) => checkHost(name),
    onSuccess: () => void queries.invalidateQueries({ queryKey: queryKeys.hosts }),
    onError: (err) => toast(t('errors.generic', { message: (err as Error).message }), 'error'),
  });
  return (
    <section aria-labelledby="hosts">
      <h1 id="hosts">{t('hosts.title')}</h1>
      <QueryList query={hosts} frame>
        {(rows) => (
          <DataTable
            rows={rows}
            rowKey={(h) => h.id}
            columns={[
              { key: 'name', header: t('hosts.name'), cell: (h) => h.name },
              { key: 'state', header: t('hosts.state'), cell: (h) => t(`hosts.states.${h.properties.state}`, { defaultValue: h.properties.state }) },
              {
                key: 'acceleration',
                header: t('hosts.acceleration'),
                testId: () => 'host-accel',
                cell: (h) => (h.properties.acceleration ? t(`hosts.accelerators.${h.properties.acceleration.accelerator}`) : '—'),
              },
              {
                key: 'why',
                header: t('hosts.why'),
                cell: (h) => {
                  const a = h.properties.acceleration;
                  return (
                    <>
                      {a?.reason ?? h.properties.stateReason}
                      {a && (
                        <>
                          <br />
                          <small>{t('hosts.checked', { when: new Date(a.checkedAt).toLocaleString(i18n.language) })}</small>
                        </>
                      )}
                    </>
                  );
                },
              },
              {
                key: 'vms',
                header: t('hosts.vms'),
                cell: ({ properties: { virtualMachines: v } }) => t('hosts.counts', { total: v.total, running: v.running, failed: v.failed }),
              },
              admin && {
                key: 'check',
                cell: (h) => (
                  <button type="button" disabled={check.isPending} onClick={() => check.mutate(h.name)}>
                    {t('hosts.check')}
                  </button>
                ),
              },
            ]}
          />
        )}
      </QueryList>
    </section>
  );
}
