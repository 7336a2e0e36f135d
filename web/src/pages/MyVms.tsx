// "My VMs": each VM a student has, its state, start, stop, reset, hours used,
// and how to connect.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { lazy, Suspense, useCallback, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, labUsers, type MyVm, myVms, runOperation, subscription, VERSIONS } from '../api.js';
import { ConsoleDialog } from '../Console.js';
import { toast } from '../Toasts.js';
import { VmReason } from '../VmReason.js';

// The screen (noVNC) is loaded when first opened: it is most of the portal's code.
const ScreenDialog = lazy(() => import('../Screen.js').then((m) => ({ default: m.ScreenDialog })));

const hours = (d: string | undefined) => {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?/.exec(d ?? '');
  return m ? Number(m[1] ?? 0) + Number(m[2] ?? 0) / 60 : 0;
};

export function MyVmsPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: ['subscription'], queryFn: subscription });
  const vms = useQuery({
    queryKey: ['my-vms', sub.data],
    queryFn: () => myVms(sub.data as string),
    enabled: Boolean(sub.data),
    // States change by themselves (a guest shuts down): look again now and then.
    refetchInterval: 10_000,
  });
  return (
    <section aria-labelledby="my-vms">
      <h1 id="my-vms">{t('vm.title')}</h1>
      {vms.isError && <p role="alert">{t('errors.generic', { message: (vms.error as Error).message })}</p>}
      {vms.data?.length === 0 && <p className="empty">{t('vm.empty')}</p>}
      <ul className="cards">
        {vms.data?.map((vm) => (
          <VmCard key={vm.id} vm={vm} />
        ))}
      </ul>
    </section>
  );
}

function VmCard({ vm }: { vm: MyVm }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const act = useMutation({
    mutationFn: (action: 'start' | 'stop' | 'reimage') => runOperation('POST', `${vm.id}/${action}`, VERSIONS.labServices),
    onSuccess: (op, action) => {
      const what = `${vm.lab.properties.title ?? vm.lab.name}: ${t(`vm.${action === 'reimage' ? 'reset' : action}`)}`;
      if (op.status === 'Succeeded') toast(t('ops.done', { what }));
      else toast(t('ops.failed', { what, error: op.error?.message ?? op.status }), 'error');
      void queries.invalidateQueries({ queryKey: ['my-vms'] });
    },
    onError: (err) => toast(t('errors.generic', { message: err instanceof ApiError ? err.message : String(err) }), 'error'),
  });
  const state = vm.properties.state;
  const c = vm.properties.connectionProfile;
  const quota = hours(vm.lab.properties.virtualMachineProfile.usageQuota);
  const me = useQuery({ queryKey: ['lab-users', vm.lab.id], queryFn: () => labUsers(vm.lab.id) });
  const used = hours(me.data?.[0]?.properties.totalUsage);
  const [console, setConsole] = useState(false);
  const closeConsole = useCallback(() => setConsole(false), []);
  const [screen, setScreen] = useState(false);
  const closeScreen = useCallback(() => setScreen(false), []);
  return (
    <li className="card" aria-label={`${vm.lab.properties.title ?? vm.lab.name} ${vm.name}`}>
      <h2>{vm.lab.properties.title ?? vm.lab.name}</h2>
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
      <div className="actions">
        <button type="button" disabled={act.isPending || (state !== 'Stopped' && state !== 'Failed')} onClick={() => act.mutate('start')}>
          {t('vm.start')}
        </button>
        <button type="button" disabled={act.isPending || (state !== 'Running' && state !== 'Failed')} onClick={() => act.mutate('stop')}>
          {t('vm.stop')}
        </button>
        <button
          type="button"
          disabled={act.isPending || (state !== 'Stopped' && state !== 'Running' && state !== 'Failed')}
          onClick={() => {
            if (window.confirm(t('vm.resetConfirm'))) act.mutate('reimage');
          }}
        >
          {t('vm.reset')}
        </button>
        <button type="button" disabled={state !== 'Running'} onClick={() => setConsole(true)}>
          {t('console.open')}
        </button>
        <button type="button" disabled={state !== 'Running'} onClick={() => setScreen(true)}>
          {t('console.screen')}
        </button>
      </div>
      {console && <ConsoleDialog vmId={vm.id} name={vm.lab.properties.title ?? vm.lab.name} onClose={closeConsole} />}
      {screen && (
        <Suspense fallback={null}>
          <ScreenDialog vmId={vm.id} name={vm.lab.properties.title ?? vm.lab.name} onClose={closeScreen} />
        </Suspense>
      )}
    </li>
  );
}
