// Admin: lab accounts — attach or detach the gallery, and choose the images
// creators may use, seeing why each is or is not offered.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { listGalleries } from '../api/gallery.js';
import { queryKeys } from '../api/keys.js';
import { listLabPlans, planImages, setImageEnabled, setPlanGallery } from '../api/lab-plans.js';
import { subscription } from '../api/session.js';
import type { LabPlan, PlanImage } from '../api/types.js';
import { DataTable } from '../components/DataTable.js';
import { QueryList } from '../components/QueryList.js';
import { toast } from '../components/Toasts.js';
import { named } from '../i18n.js';

export function AccountsPage() {
  const { t } = useTranslation();
  const sub = useQuery({ queryKey: queryKeys.subscription, queryFn: subscription });
  const plans = useQuery({ queryKey: queryKeys.labPlans.list(sub.data), queryFn: () => listLabPlans(sub.data as string), enabled: Boolean(sub.data) });
  return (
    <section aria-labelledby="accounts">
      <h1 id="accounts">{t('accounts.title')}</h1>
      <QueryList query={plans} empty={t('accounts.empty')}>
        {(rows) => rows.map((p) => <PlanCard key={p.id} plan={p} sub={sub.data as string} />)}
      </QueryList>
    </section>
  );
}

function PlanCard({ plan, sub }: { plan: LabPlan; sub: string }) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const galleries = useQuery({ queryKey: queryKeys.galleries(sub), queryFn: () => listGalleries(sub) });
  const images = useQuery({ queryKey: queryKeys.planImages.withHidden(plan.id), queryFn: () => planImages(plan.id, true) });
  const [choice, setChoice] = useState('');
  const refresh = () => {
    void queries.invalidateQueries({ queryKey: queryKeys.labPlans.all });
    void queries.invalidateQueries({ queryKey: queryKeys.planImages.of(plan.id) });
  };
  const attach = useMutation({
    mutationFn: (id: string | null) => setPlanGallery(plan.id, id),
    onSuccess: refresh,
    onError: (e) => toast(t('errors.generic', { message: (e as Error).message }), 'error'),
  });
  const enable = useMutation({
    mutationFn: ({ id, on }: { id: string; on: boolean }) => setImageEnabled(id, on),
    // The switch moves at once; the list is read again when the server has answered. A read already under way
    // (after attaching a gallery, say) is cancelled first, or its older answer would move the switch back.
    onMutate: async ({ id, on }) => {
      await queries.cancelQueries({ queryKey: queryKeys.planImages.withHidden(plan.id) });
      queries.setQueryData<PlanImage[]>(queryKeys.planImages.withHidden(plan.id), (old) =>
        old?.map((i) => (i.id === id ? { ...i, properties: { ...i.properties, enabledState: on ? 'Enabled' : 'Disabled' } } : i)),
      );
    },
    onSuccess: refresh,
    onError: (e) => toast(t('errors.generic', { message: (e as Error).message }), 'error'),
  });
  const current = plan.properties.sharedGalleryId;
  return (
    <article className="card" aria-labelledby={`plan-${plan.name}`}>
      <h2 id={`plan-${plan.name}`}>
        {plan.name} <small>({plan.location})</small>
      </h2>
      <p>
        {t('accounts.gallery')}: <strong>{current?.split('/').pop() ?? t('accounts.none')}</strong>
      </p>
      <div className="actions">
        <label className="inline">
          <select aria-label={t('accounts.gallery')} value={choice} onChange={(e) => setChoice(e.target.value)}>
            <option value="">—</option>
            {galleries.data?.map((g) => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={!choice || attach.isPending} onClick={() => attach.mutate(choice)}>
          {t('accounts.attach')}
        </button>
        <button type="button" disabled={!current || attach.isPending} title={t('accounts.detachHelp')} onClick={() => attach.mutate(null)}>
          {t('accounts.detach')}
        </button>
      </div>
      <h3>{t('accounts.images')}</h3>
      <QueryList query={images} frame>
        {(rows) => (
          <DataTable
            rows={rows}
            rowKey={(i) => i.id}
            columns={[
              {
                key: 'image',
                header: t('labs.image'),
                cell: (i) => (
                  <>
                    {i.name} {i.properties.version} ({named(t, 'osStates', i.properties.osState)}, {t('units.gb', { n: i.properties.osDiskSizeGB ?? '?' })})
                  </>
                ),
              },
              {
                key: 'enabled',
                header: t('accounts.enabled'),
                cell: (i) => (
                  <label className="inline">
                    <input
                      type="checkbox"
                      aria-label={`${t('accounts.enabled')}: ${i.name}`}
                      checked={i.properties.enabledState === 'Enabled'}
                      onChange={(e) => enable.mutate({ id: i.id, on: e.target.checked })}
                    />
                  </label>
                ),
              },
              {
                key: 'hidden',
                header: t('accounts.hidden'),
                testId: (i) => `reasons-${i.name}`,
                cell: (i) => (i.properties.hiddenReasons ?? []).map((r) => t(`accounts.reasons.${r}`, { defaultValue: r })).join(', ') || '—',
              },
            ]}
          />
        )}
      </QueryList>
    </article>
  );
}
