// Why a VM failed (or what its user should know while it runs): the reason's
// name in the reader's language, and the server's explanation with what to do.
import { useTranslation } from 'react-i18next';

export function VmReason({ state, code, message }: { state: string; code?: string; message?: string }) {
  const { t } = useTranslation();
  if (!code && !(state === 'Failed' && message)) return null;
  const failed = state === 'Failed';
  return (
    <div className={failed ? 'vm-reason error' : 'vm-reason'} role={failed ? 'alert' : 'status'} data-testid="vm-reason">
      <strong>{t(`vm.reasons.${code ?? 'Unknown'}`, { defaultValue: code ?? t('vm.reasons.Unknown') })}</strong>
      {message ? <span>{message}</span> : null}
    </div>
  );
}
