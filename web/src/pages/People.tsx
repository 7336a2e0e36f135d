// Admin: people's accounts with their roles (a new one gets a one-time
// invitation to choose a password) and API tokens (revoke).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { queryKeys } from '../api/keys.js';
import { createPerson, listPeople, listTokens, revokeToken } from '../api/people.js';
import { ROLES } from '../api/types.js';
import { DataTable } from '../components/DataTable.js';
import { QueryList } from '../components/QueryList.js';
import { toast } from '../components/Toasts.js';
import { dateTime, named } from '../i18n.js';

export function PeoplePage() {
  const { t, i18n } = useTranslation();
  const queries = useQueryClient();
  const people = useQuery({ queryKey: queryKeys.people, queryFn: listPeople });
  const tokens = useQuery({ queryKey: queryKeys.tokens, queryFn: listTokens });
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('creator');
  const [invitation, setInvitation] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => createPerson(email, role),
    onSuccess: (a) => {
      if (a.invitation) setInvitation(t('people.invitation', { email: a.properties.email, token: a.invitation.token }));
      setEmail('');
      void queries.invalidateQueries({ queryKey: queryKeys.people });
    },
    onError: (e) => toast(t('errors.generic', { message: (e as Error).message }), 'error'),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => revokeToken(id),
    onSuccess: (_r, id) => {
      toast(t('people.revoked', { name: tokens.data?.find((x) => x.name === id)?.properties.displayName ?? id }));
      void queries.invalidateQueries({ queryKey: queryKeys.tokens });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <section aria-labelledby="people">
      <h1 id="people">{t('people.title')}</h1>
      <h2>{t('people.accounts')}</h2>
      <form className="actions" onSubmit={submit}>
        <label className="inline">
          {t('people.email')} <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label className="inline">
          {t('people.role')}
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {t(`people.roles.${r}`)}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={create.isPending}>
          {t('people.create')}
        </button>
      </form>
      {invitation && (
        <p role="status" className="invitation">
          {invitation}
        </p>
      )}
      <QueryList query={people} frame>
        {(rows) => (
          <DataTable
            rows={rows}
            rowKey={(p) => p.name}
            columns={[
              { key: 'email', header: t('people.email'), cell: (p) => p.properties.email },
              { key: 'role', header: t('people.role'), cell: (p) => named(t, 'people.roles', p.properties.role) },
              { key: 'state', header: t('people.state'), cell: (p) => named(t, 'people.accountStates', p.properties.state) },
              {
                key: 'lastSignIn',
                header: t('people.lastSignIn'),
                cell: (p) => (p.properties.lastSignInAt ? dateTime(p.properties.lastSignInAt, i18n.language) : '—'),
              },
            ]}
          />
        )}
      </QueryList>
      <h2>{t('people.tokens')}</h2>
      <QueryList query={tokens} frame>
        {(rows) => (
          <DataTable
            rows={rows}
            rowKey={(k) => k.name}
            columns={[
              { key: 'name', header: t('people.name'), cell: (k) => k.properties.displayName },
              { key: 'subject', header: t('people.subject'), cell: (k) => k.properties.subject },
              { key: 'role', header: t('people.role'), cell: (k) => named(t, 'people.roles', k.properties.role) },
              { key: 'state', header: t('people.state'), cell: (k) => named(t, 'people.tokenStates', k.properties.state) },
              {
                key: 'revoke',
                cell: (k) =>
                  k.properties.state === 'Active' && (
                    <button type="button" onClick={() => revoke.mutate(k.name)}>
                      {t('people.revoke')}
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
