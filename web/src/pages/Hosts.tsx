// Hosts (lab staff): each hypervisor host, how it runs VMs (KVM where the
// probe proved it works, software emulation otherwise) and why, its VMs; admins
// can have KVM checked again.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { checkHost, listHosts } from '../api.js';
import { toast } from '../Toasts.js';

export function HostsPage({ admin }: { admin: boolean }) {
  const { t, i18n } = useTranslation();
  const queries = useQueryClient();
  const hosts = useQuery({ queryKey: ['hosts'], queryFn: listHosts });
  const check = useMutation({
    mutationFn: (name: string) => checkHost(name),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ['hosts'] }),
    onError: (err) => toast(t('errors.generic', { message: (err as Error).message }), 'error'),
  });
  return (
    <section aria-labelledby="hosts">
      <h1 id="hosts">{t('hosts.title')}</h1>
      {hosts.isError && <p role="alert">{t('errors.generic', { message: (hosts.error as Error).message })}</p>}
      <table>
        <thead>
          <tr>
            <th scope="col">{t('hosts.name')}</th>
            <th scope="col">{t('hosts.state')}</th>
            <th scope="col">{t('hosts.acceleration')}</th>
            <th scope="col">{t('hosts.why')}</th>
            <th scope="col">{t('hosts.vms')}</th>
            {admin && <th scope="col" />}
          </tr>
        </thead>
        <tbody>
          {hosts.data?.map((h) => {
            const a = h.properties.acceleration;
            const v = h.properties.virtualMachines;
            return (
              <tr key={h.id}>
                <td>{h.name}</td>
                <td>{t(`hosts.states.${h.properties.state}`, { defaultValue: h.properties.state })}</td>
                <td data-testid="host-accel">{a ? t(`hosts.accelerators.${a.accelerator}`) : '—'}</td>
                <td>
                  {a?.reason ?? h.properties.stateReason}
                  {a && (
                    <>
                      <br />
                      <small>{t('hosts.checked', { when: new Date(a.checkedAt).toLocaleString(i18n.language) })}</small>
                    </>
                  )}
                </td>
                <td>{t('hosts.counts', { total: v.total, running: v.running, failed: v.failed })}</td>
                {admin && (
                  <td>
                    <button type="button" disabled={check.isPending} onClick={() => check.mutate(h.name)}>
                      {t('hosts.check')}
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
