// One lab: its template VM (start, stop, export to the gallery with progress
// and a success message), publishing, and the student VMs.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { queryKeys } from '../api/keys.js';
import { saveImage } from '../api/lab-plans.js';
import { addLabUser, getLab, inviteLabUser, labIdOf, labUsers, publishLab, setCapacity } from '../api/labs.js';
import { subscription } from '../api/session.js';
import { ApiError, follow } from '../api/transport.js';
import type { Lab, LabVm } from '../api/types.js';
import { labVms, type VmAction, vmAction } from '../api/vms.js';
import { useDialogFocus } from '../components/dialog.js';
import { QueryList } from '../components/QueryList.js';
import { toast } from '../components/Toasts.js';
import { VmActions } from '../components/VmActions.js';
import { VmReason } from '../components/VmReason.js';
import { named } from '../i18n.js';

export function LabPage() {
  const { t } = useTranslation();
  const { rg, lab: name } = useParams();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const labId = sub.data ? labIdOf(sub.data, rg, name) : undefined;
  const lab = useQuery({ queryKey: queryKeys.lab(labId), queryFn: () => getLab(labId as string), enabled: Boolean(labId) });
  const vms = useQuery({ queryKey: queryKeys.labVms.of(labId), queryFn: () => labVms(labId as string), enabled: Boolean(labId), refetchInterval: 5_000 });
  const queries = useQueryClient();
  const publish = useMutation({
    mutationFn: () => publishLab(labId as string),
    onSuccess: (op) => {
      if (op.status === 'Succeeded') toast(t('ops.done', { what: t('lab.publish') }));
      else toast(t('ops.failed', { what: t('lab.publish'), error: op.error?.message ?? op.status }), 'error');
      void queries.invalidateQueries({ queryKey: queryKeys.lab(labId) });
      void queries.invalidateQueries({ queryKey: queryKeys.labVms.of(labId) });
    },
    onError: (err) => toast(t('errors.generic', { message: (err as Error).message }), 'error'),
  });
  if (!lab.data) return <p>{lab.isError ? t('errors.generic', { message: (lab.error as Error).message }) : '…'}</p>;
  const l = lab.data;
  const template = vms.data?.find((v) => v.properties.vmType === 'Template');
  const students = vms.data?.filter((v) => v.properties.vmType === 'User') ?? [];
  return (
    <section aria-labelledby="lab-title">
      <p>
        <Link to="/labs">← {t('lab.back')}</Link>
      </p>
      <h1 id="lab-title">{l.properties.title ?? l.name}</h1>
      <p>
        {named(t, 'labs.states', l.properties.state)} · {l.properties.virtualMachineProfile.imageReference.id.split('/').pop()}{' '}
        {l.properties.virtualMachineProfile.imageReference.exactVersion}
      </p>
      <h2>{t('lab.template')}</h2>
      {template ? <TemplateCard lab={l} vm={template} /> : <p className="empty">{t('lab.noTemplate')}</p>}
      <Students lab={l} />
      <h2>{t('lab.students')}</h2>
      <button
        type="button"
        disabled={publish.isPending}
        onClick={() => {
          if (l.properties.state !== 'Published' || window.confirm(t('lab.republishWarning'))) publish.mutate();
        }}
      >
        {l.properties.state === 'Published' ? t('lab.publishAgain') : t('lab.publish')}
      </button>
      {l.properties.state === 'Published' && <p>{t('lab.published', { count: students.length })}</p>}
      <Capacity labId={l.id} current={l.properties.virtualMachineProfile.sku.capacity ?? 0} />
      <ul>
        {students.map((v) => (
          <li key={v.id}>
            {v.name} — {t(`vm.states.${v.properties.state}`, { defaultValue: v.properties.state })}
            {v.properties.claimedByUserId ? ` — ${v.properties.claimedByUserId}` : ''}
            <VmReason state={v.properties.state} code={v.properties.statusCode} message={v.properties.statusMessage} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function Capacity({ labId, current }: { labId: string; current: number }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [n, setN] = useState(current);
  const apply = useMutation({
    mutationFn: () => setCapacity(labId, n),
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: queryKeys.lab(labId) });
      void queries.invalidateQueries({ queryKey: queryKeys.labVms.of(labId) });
    },
    onError: (err) => toast(t('errors.generic', { message: (err as Error).message }), 'error'),
  });
  return (
    <form
      className="actions"
      onSubmit={(e) => {
        e.preventDefault();
        apply.mutate();
      }}
    >
      <label className="inline">
        {t('students.capacity')} <input type="number" min={0} max={400} value={n} onChange={(e) => setN(Number(e.target.value))} />
      </label>
      <button type="submit" disabled={apply.isPending || n === current}>
        {t('students.apply')}
      </button>
    </form>
  );
}

function Students({ lab }: { lab: Lab }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const users = useQuery({ queryKey: queryKeys.labUsers(lab.id), queryFn: () => labUsers(lab.id) });
  const [email, setEmail] = useState('');
  const add = useMutation({
    mutationFn: () => addLabUser(lab.id, email.split('@')[0]?.replace(/[^\w.-]/g, '-') || 'student', email),
    onSuccess: () => {
      setEmail('');
      void queries.invalidateQueries({ queryKey: queryKeys.labUsers(lab.id) });
      void queries.invalidateQueries({ queryKey: queryKeys.labVms.of(lab.id) });
    },
    onError: (err) => toast(t('errors.generic', { message: (err as Error).message }), 'error'),
  });
  const invite = useMutation({
    mutationFn: (userId: string) => inviteLabUser(userId),
    onSuccess: () => void queries.invalidateQueries({ queryKey: queryKeys.labUsers(lab.id) }),
  });
  const code = lab.properties.securityProfile?.registrationCode;
  return (
    <>
      <h2>{t('students.title')}</h2>
      {code && (
        <p>
          <strong data-testid="registration-code">{t('students.code', { code })}</strong> — {t('students.codeHelp')}
        </p>
      )}
      <form
        className="actions"
        onSubmit={(e) => {
          e.preventDefault();
          add.mutate();
        }}
      >
        <label className="inline">
          {t('students.email')} <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <button type="submit" disabled={add.isPending}>
          {t('students.add')}
        </button>
      </form>
      <QueryList query={users} empty={t('students.empty')} frame>
        {(rows) => (
          <ul>
            {rows.map((u) => (
              <li key={u.id}>
                {u.properties.email} — {named(t, 'students.registrationStates', u.properties.registrationState)} /{' '}
                {named(t, 'students.invitationStates', u.properties.invitationState)}{' '}
                <button type="button" onClick={() => invite.mutate(u.id)}>
                  {t('students.invite')}
                </button>
              </li>
            ))}
          </ul>
        )}
      </QueryList>
    </>
  );
}

function TemplateCard({ lab, vm }: { lab: Lab; vm: LabVm }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [exporting, setExporting] = useState(false);
  const act = useMutation({
    mutationFn: (action: VmAction) => vmAction(vm.id, action),
    onSuccess: () => void queries.invalidateQueries({ queryKey: queryKeys.labVms.all }),
    onError: (err) => toast(t('errors.generic', { message: (err as Error).message }), 'error'),
  });
  const state = vm.properties.state;
  const exp = vm.properties.exportStatus;
  return (
    <div className="card">
      <p data-testid="template-state">{t(`vm.states.${state}`, { defaultValue: state })}</p>
      <VmReason state={state} code={vm.properties.statusCode} message={vm.properties.statusMessage} />
      {exp?.status === 'InProgress' && (
        <p role="status">
          {t('exportDialog.running', { percent: exp.percentComplete })} <progress max={100} value={exp.percentComplete} />
        </p>
      )}
      <VmActions vmId={vm.id} state={state} name={t('lab.template')} busy={act.isPending} onAction={(a) => act.mutate(a)}>
        <button type="button" onClick={() => setExporting(true)}>
          {t('lab.export')}
        </button>
      </VmActions>
      {exporting && <ExportDialog lab={lab} vm={vm} onClose={() => setExporting(false)} />}
    </div>
  );
}

function ExportDialog({ lab, vm, onClose }: { lab: Lab; vm: LabVm; onClose: () => void }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [mode, setMode] = useState<'new' | 'update'>('new');
  const [name, setName] = useState('');
  const [percent, setPercent] = useState<number | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  const box = useRef<HTMLDivElement>(null);
  useDialogFocus(box, onClose);
  useEffect(() => {
    first.current?.focus();
  }, []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await saveImage(lab.properties.labPlanId as string, {
        labVirtualMachineId: vm.id,
        ...(mode === 'new' ? { name } : { updateExisting: true }),
      });
      setPercent(0);
      const op = await follow(r.operationUrl, setPercent);
      if (op.status !== 'Succeeded') throw new ApiError(500, op.error?.code ?? 'Failed', op.error?.message ?? op.status);
      const message = t('exportDialog.done', { image: r.imageId.split('/').pop(), version: r.version });
      setDone(message);
      toast(message);
      void queries.invalidateQueries({ queryKey: queryKeys.labVms.all });
    } catch (err) {
      setPercent(null);
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <div className="backdrop">
      <div ref={box} role="dialog" aria-modal="true" aria-labelledby="export-title" className="dialog">
        <h2 id="export-title">{t('exportDialog.title')}</h2>
        <p>{t('exportDialog.intro')}</p>
        <form onSubmit={submit}>
          <fieldset>
            <label className="inline">
              <input ref={first} type="radio" name="mode" checked={mode === 'new'} onChange={() => setMode('new')} /> {t('exportDialog.createNew')}
            </label>
            <label className="inline">
              <input type="radio" name="mode" checked={mode === 'update'} onChange={() => setMode('update')} /> {t('exportDialog.updateExisting')}
            </label>
            {mode === 'update' && <p className="help">{t('exportDialog.updateHelp')}</p>}
          </fieldset>
          {mode === 'new' && (
            <label>
              {t('exportDialog.name')}
              <input required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,78}[A-Za-z0-9]" value={name} onChange={(e) => setName(e.target.value)} />
            </label>
          )}
          {percent !== null && !done && (
            <p role="status">
              {t('exportDialog.running', { percent })} <progress max={100} value={percent} />
            </p>
          )}
          {done && <p role="status">{done}</p>}
          {error && (
            <p role="alert" className="error">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="submit" disabled={percent !== null && !done && !error}>
              {t('exportDialog.submit')}
            </button>
            <button type="button" onClick={onClose}>
              {t('exportDialog.cancel')}
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
