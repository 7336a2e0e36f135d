// The action bar of a lab VM, shared by the student's card (My VMs) and the
// template card (a lab's page): start, stop, reset, console and screen, enabled
// by the VM's state the same way on both (a Failed VM can be started and
// stopped again), and the console and screen dialogs they open. A page adds its
// own buttons after these (the template's "Export to gallery").
import { lazy, type ReactNode, Suspense, useCallback, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { VmPowerState } from '../api/types.js';
import type { VmAction } from '../api/vms.js';
import { ConsoleDialog } from './Console.js';

// The screen (noVNC) is loaded when first opened: it is most of the portal's code.
const ScreenDialog = lazy(() => import('./Screen.js').then((m) => ({ default: m.ScreenDialog })));

/** What a VM in a state can be asked to do. */
export const vmCan = {
  start: (s: VmPowerState) => s === 'Stopped' || s === 'Failed',
  stop: (s: VmPowerState) => s === 'Running' || s === 'Failed',
  reset: (s: VmPowerState) => s === 'Stopped' || s === 'Running' || s === 'Failed',
  connect: (s: VmPowerState) => s === 'Running',
};

export function VmActions({
  vmId,
  state,
  name,
  busy,
  onAction,
  reset = false,
  children,
}: {
  vmId: string;
  state: VmPowerState;
  /** What the console and screen dialogs call the VM. */
  name: string;
  /** An action is under way: the power buttons wait for it. */
  busy: boolean;
  onAction: (action: VmAction) => void;
  /** Offer "Reset" (after a warning that changes are lost). */
  reset?: boolean;
  children?: ReactNode;
}) {
  const { t } = useTranslation();
  const [console, setConsole] = useState(false);
  const closeConsole = useCallback(() => setConsole(false), []);
  const [screen, setScreen] = useState(false);
  const closeScreen = useCallback(() => setScreen(false), []);
  return (
    <>
      <div className="actions">
        <button type="button" disabled={busy || !vmCan.start(state)} onClick={() => onAction('start')}>
          {t('vm.start')}
        </button>
        <button type="button" disabled={busy || !vmCan.stop(state)} onClick={() => onAction('stop')}>
          {t('vm.stop')}
        </button>
        {reset && (
          <button
            type="button"
            disabled={busy || !vmCan.reset(state)}
            onClick={() => {
              if (window.confirm(t('vm.resetConfirm'))) onAction('reimage');
            }}
          >
            {t('vm.reset')}
          </button>
        )}
        <button type="button" disabled={!vmCan.connect(state)} onClick={() => setConsole(true)}>
          {t('console.open')}
        </button>
        <button type="button" disabled={!vmCan.connect(state)} onClick={() => setScreen(true)}>
          {t('console.screen')}
        </button>
        {children}
      </div>
      {console && <ConsoleDialog vmId={vmId} name={name} onClose={closeConsole} />}
      {screen && (
        <Suspense fallback={null}>
          <ScreenDialog vmId={vmId} name={name} onClose={closeScreen} />
        </Suspense>
      )}
    </>
  );
}
