// The lab-creation wizard: a lab account and one of the images it offers;
// credentials only for a Generalized image (and why not for a Specialized
// one); size, seats, hours and auto-shutdown; then the lab is created and its
// template VM started, with progress.
import { useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router';
import { queryKeys } from '../api/keys.js';
import { listLabPlans, planImages } from '../api/lab-plans.js';
import { createLab, labIdOf, listResourceGroups, putSchedule } from '../api/labs.js';
import { subscription } from '../api/session.js';
import { ApiError } from '../api/transport.js';
import type { PlanImage } from '../api/types.js';
import { named } from '../i18n.js';

const WEEK = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export function NewLabPage() {
  const { t, i18n } = useTranslation();
  // 2023-01-01 was a Sunday: day i of that week, named in the page's language.
  const dayName = (i: number) => new Intl.DateTimeFormat(i18n.language, { weekday: 'long' }).format(new Date(2023, 0, 1 + i));
  const navigate = useNavigate();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const plans = useQuery({ queryKey: queryKeys.labPlans.list(sub.data), queryFn: () => listLabPlans(sub.data as string), enabled: Boolean(sub.data) });
  const groups = useQuery({ queryKey: queryKeys.resourceGroups(sub.data), queryFn: () => listResourceGroups(sub.data as string), enabled: Boolean(sub.data) });
  const [step, setStep] = useState(1);
  const [planId, setPlanId] = useState('');
  const [imageId, setImageId] = useState('');
  const [form, setForm] = useState({
    name: '',
    title: '',
    group: '',
    username: '',
    password: '',
    size: 'Standard_B1s',
    capacity: 10,
    hours: 10,
    template: true,
    disconnect: true,
    idle: false,
    schedule: false,
    from: '08:00',
    to: '09:30',
    until: new Date(Date.now() + 90 * 86400_000).toISOString().slice(0, 10),
  });
  const [days, setDays] = useState<string[]>(['Tuesday', 'Thursday']);
  const [percent, setPercent] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const plan = planId || plans.data?.[0]?.id || '';
  const images = useQuery({ queryKey: queryKeys.planImages.offered(plan), queryFn: () => planImages(plan), enabled: Boolean(plan) });
  const offered = (images.data ?? []).filter((i) => i.properties.enabledState === 'Enabled');
  const image: PlanImage | undefined = offered.find((i) => i.id === imageId) ?? offered[0];
  const generalized = image?.properties.osState === 'Generalized';
  const set = (k: keyof typeof form) => (e: { target: { value: string; checked?: boolean; type?: string } }) =>
    setForm((f) => ({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.type === 'number' ? Number(e.target.value) : e.target.value }));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (step < 3) return setStep(step + 1);
    if (!image || !sub.data) return;
    setError(null);
    setPercent(0);
    const group = form.group || groups.data?.[0]?.name || '';
    const labId = labIdOf(sub.data, group, form.name);
    try {
      const op = await createLab(
        labId,
        {
          properties: {
            labPlanId: plan,
            title: form.title || form.name,
            autoShutdownProfile: {
              shutdownOnDisconnect: form.disconnect ? 'Enabled' : 'Disabled',
              disconnectDelay: 'PT15M',
              shutdownOnIdle: form.idle ? 'LowUsage' : 'None',
              idleDelay: 'PT30M',
            },
            virtualMachineProfile: {
              createOption: form.template ? 'TemplateVM' : 'Image',
              imageReference: { id: image.id },
              sku: { name: form.size, capacity: form.capacity },
              usageQuota: `PT${form.hours}H`,
              ...(generalized ? { adminUser: { username: form.username, password: form.password } } : {}),
            },
          },
        },
        setPercent,
      );
      if (op.status !== 'Succeeded') throw new ApiError(500, op.error?.code ?? 'Failed', op.error?.message ?? op.status);
      if (form.schedule && days.length) {
        // Today's date at the class times, in this browser's time zone; the server repeats it on the chosen days.
        const at = (hhmm: string) => {
          const [h, m] = hhmm.split(':').map(Number);
          const d = new Date();
          d.setHours(h ?? 0, m ?? 0, 0, 0);
          return d.toISOString();
        };
        await putSchedule(labId, 'class', {
          startAt: at(form.from),
          stopAt: at(form.to),
          timeZoneId: Intl.DateTimeFormat().resolvedOptions().timeZone,
          recurrencePattern: { frequency: 'Weekly', weekDays: days, interval: 1, expirationDate: new Date(`${form.until}T23:59:59`).toISOString() },
        });
      }
      navigate(`/labs/${group}/${form.name}`);
    } catch (err) {
      setPercent(null);
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  return (
    <section aria-labelledby="new-lab">
      <h1 id="new-lab">{t('newLab.title')}</h1>
      <p>{t('newLab.step', { n: step })}</p>
      <form onSubmit={submit} className="wizard">
        {step === 1 && (
          <>
            <label>
              {t('newLab.account')}
              <select value={plan} onChange={(e) => setPlanId(e.target.value)}>
                {plans.data?.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name}
                  </option>
                ))}
              </select>
            </label>
            {images.data && offered.length === 0 && <p className="empty">{t('newLab.noImages')}</p>}
            <fieldset>
              <legend>{t('newLab.image')}</legend>
              {offered.map((i) => (
                <label key={i.id} className="inline">
                  <input type="radio" name="image" checked={image?.id === i.id} onChange={() => setImageId(i.id)} />
                  {i.name} {i.properties.version} — {i.properties.osType}, {named(t, 'osStates', i.properties.osState)},{' '}
                  {t('units.gb', { n: i.properties.osDiskSizeGB ?? '' })}
                </label>
              ))}
            </fieldset>
          </>
        )}
        {step === 2 && (
          <>
            <label>
              {t('newLab.name')}
              <input required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}" value={form.name} onChange={set('name')} />
            </label>
            <label>
              {t('newLab.labTitle')}
              <input value={form.title} onChange={set('title')} />
            </label>
            <label>
              {t('newLab.resourceGroup')}
              <select value={form.group || groups.data?.[0]?.name || ''} onChange={set('group')}>
                {groups.data?.map((g) => (
                  <option key={g.name}>{g.name}</option>
                ))}
              </select>
            </label>
            <p className="help" data-testid="credentials-help">
              {generalized ? t('newLab.generalizedHelp') : t('newLab.specializedHelp')}
            </p>
            {generalized && (
              <>
                <label>
                  {t('newLab.username')}
                  <input required autoComplete="off" value={form.username} onChange={set('username')} />
                </label>
                <label>
                  {t('newLab.password')}
                  <input required type="password" autoComplete="new-password" value={form.password} onChange={set('password')} />
                </label>
              </>
            )}
          </>
        )}
        {step === 3 && (
          <>
            <label>
              {t('newLab.size')}
              <input value={form.size} onChange={set('size')} />
            </label>
            <label>
              {t('newLab.capacity')}
              <input type="number" min={0} max={400} value={form.capacity} onChange={set('capacity')} />
            </label>
            <label>
              {t('newLab.quota')}
              <input type="number" min={0} max={9999} value={form.hours} onChange={set('hours')} />
            </label>
            <label className="inline">
              <input type="checkbox" checked={form.template} onChange={set('template')} /> {t('newLab.template')}
            </label>
            <label className="inline">
              <input type="checkbox" checked={form.disconnect} onChange={set('disconnect')} /> {t('newLab.shutdownOnDisconnect')}
            </label>
            <label className="inline">
              <input type="checkbox" checked={form.idle} onChange={set('idle')} /> {t('newLab.shutdownIdle')}
            </label>
            <label className="inline">
              <input type="checkbox" checked={form.schedule} onChange={set('schedule')} /> {t('newLab.schedule')}
            </label>
            {form.schedule && (
              <fieldset>
                <legend>{t('newLab.days')}</legend>
                {WEEK.map((d, i) => (
                  <label key={d} className="inline">
                    <input
                      type="checkbox"
                      checked={days.includes(d)}
                      onChange={(e) => setDays((xs) => (e.target.checked ? [...xs, d] : xs.filter((x) => x !== d)))}
                    />
                    {dayName(i)}
                  </label>
                ))}
                <label className="inline">
                  {t('newLab.from')} <input type="time" value={form.from} onChange={set('from')} />
                </label>
                <label className="inline">
                  {t('newLab.to')} <input type="time" value={form.to} onChange={set('to')} />
                </label>
                <label className="inline">
                  {t('newLab.until')} <input type="date" value={form.until} onChange={set('until')} />
                </label>
              </fieldset>
            )}
          </>
        )}
        {percent !== null && (
          <p role="status">
            {t('newLab.creating', { percent })} <progress max={100} value={percent} />
          </p>
        )}
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <div className="actions">
          {step > 1 && (
            <button type="button" onClick={() => setStep(step - 1)}>
              {t('newLab.back')}
            </button>
          )}
          <button type="submit" disabled={!image || percent !== null}>
            {step < 3 ? t('newLab.next') : t('newLab.create')}
          </button>
        </div>
      </form>
    </section>
  );
}
