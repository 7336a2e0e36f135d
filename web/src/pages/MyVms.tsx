// "My VMs": each VM a student has, its state, start, stop, reset, hours used,
// and how to connect.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { queryKeys } from '../api/keys.js';
import { labUsers } from '../api/labs.js';
import { subscription } from '../api/session.js';
import { ApiError } from '../api/transport.js';
import { type MyVm, myVms, type VmAction, vmAction } from '../api/vms.js';
import { QueryList } from '../components/QueryList.js';
import { toast } from '../components/Toasts.js';
import { VmActions } from '../components/VmActions.js';
import { VmReason } from '../components/VmReason.js';

const hours = (d: string | undefined) => {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?/.exec(d ?? '');
  return m ? Number(m[1] ?? 0) + Number(m[2] ?? 0) / 60 : 0;
};

export function MyVmsPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const vms = useQuery({
    queryKey: queryKeys.myVms.list(sub.data),
    queryFn: () => myVms(sub.data as string),
    enabled: Boolean(sub.data),
    // States change by themselves (a guest shuts down): look again now and then.
    refetchInterval: 10_000,
  });
  return (
    <section aria-labelledby="my-vms">
      <h1 id="my-vms">{t('vm.title')}</h1>
      <QueryList query={vms} empty={t('vm.empty')} frame>
        {(rows) => (
          <ul className="cards">
            {rows.map((vm) => (
              <VmCard key={vm.id} vm={vm} />
            ))}
          </ul>
        )}
      </QueryList>
    </section>
  );
}

function VmCard({ vm }: { vm: MyVm }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const title = vm.lab.properties.title ?? vm.lab.name;
  const act = useMutation({
    mutationFn: (action: VmAction) => vmAction(vm.id, action),
    onSuccess: (op, action) => {
      const what = `${title}: ${t(`vm.${action === 'reimage' ? 'reset' : action}`)}`;
      if (op.status === 'Succeeded') toast(t('ops.done', { what }));
      else toast(t('ops.failed', { what, error: op.error?.message ?? op.status }), 'error');
      void queries.invalidateQueries({ queryKey: queryKeys.myVms.all });
    },
    onError: (err) => toast(t('errors.generic', { message: err instanceof ApiError ? err.message : String(err) }), 'error'),
  });
  const state = vm.properties.state;
  const c = vm.properties.connectionProfile;
  const quota = hours(vm.lab.properties.virtualMachineProfile.usageQuota);
  const me = useQuery({ queryKey: queryKeys.labUsers(vm.lab.id), queryFn: () => labUsers(vm.lab.id) });
  const used = hours(me.data?.[0]?.properties.totalUsage);
  return (
    <li className="card" aria-label={`${title} ${vm.name}`}>
      <h2>{title}</h2>
      <dl>
        <dt>{t('vm.state')}</dt>
        <dd data-testid="vm-state">{t(`vm.states.${state}`, { defaultValue: state })}</dd>
        {(vm.properties.statusCode || state === 'Failed') && (
          <>
            <dt>{state === 'Failed' ? t('vm.why') : t('vm.note')}</dt>
            <dd>
              <VmReason state={state} code={vm.properties.statusCode} message={vm.properties.statusMessage} />
            </dd>
          </>
        )}
        <dt>{t('vm.connect')}</dt>
        <dd>
          {c?.sshAuthority ? (
            <code>
              ssh -p {c.sshAuthority.split(':')[1]} {c.adminUsername ?? 'user'}@{c.sshAuthority.split(':')[0]}
            </code>
          ) : c?.rdpAuthority ? (
            <code>{c.rdpAuthority}</code>
          ) : (
            t('vm.notRunning')
          )}
        </dd>
        {quota > 0 && (
          <>
            <dt>{t('vm.hours')}</dt>
            <dd data-testid="vm-hours">{t('vm.usage', { used: used.toFixed(1), quota })}</dd>
          </>
        )}
      </dl>
      <VmActions vmId={vm.id} state={state} name={title} busy={act.isPending} onAction={(a) => act.mutate(a)} reset />
    </li>
  );
}
