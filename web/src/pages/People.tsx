// Admin: people's accounts with their roles (a new one gets a one-time
// invitation to choose a password) and API tokens (revoke).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { createPerson, listPeople, listTokens, revokeToken } from '../api.js';
import { dateTime, named } from '../i18n.js';
import { toast } from '../Toasts.js';

const ROLES = ['admin', 'creator', 'user'] as const;

export function PeoplePage() {
  const { t, i18n } = useTranslation();
  const queries = useQueryClient();
  const people = useQuery({ queryKey: ['people'], queryFn: listPeople });
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: listTokens });
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('creator');
  const [invitation, setInvitation] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => createPerson(email, role),
    onSuccess: (a) => {
      if (a.invitation) setInvitation(t('people.invitation', { email: a.properties.email, token: a.invitation.token }));
      setEmail('');
      void queries.invalidateQueries({ queryKey: ['people'] });
    },
    onError: (e) => toast(t('errors.generic', { message: (e as Error).message }), 'error'),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => revokeToken(id),
    onSuccess: (_r, id) => {
      toast(t('people.revoked', { name: tokens.data?.find((x) => x.name === id)?.properties.displayName ?? id }));
      void queries.invalidateQueries({ queryKey: ['tokens'] });
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
      <table>
        <thead>
          <tr>
            <th scope="col">{t('people.email')}</th>
            <th scope="col">{t('people.role')}</th>
            <th scope="col">{t('people.state')}</th>
            <th scope="col">{t('people.lastSignIn')}</th>
          </tr>
        </thead>
        <tbody>
          {people.data?.map((p) => (
            <tr key={p.name}>
              <td>{p.properties.email}</td>
              <td>{named(t, 'people.roles', p.properties.role)}</td>
              <td>{named(t, 'people.accountStates', p.properties.state)}</td>
              <td>{p.properties.lastSignInAt ? dateTime(p.properties.lastSignInAt, i18n.language) : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>{t('people.tokens')}</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">{t('people.name')}</th>
            <th scope="col">{t('people.subject')}</th>
            <th scope="col">{t('people.role')}</th>
            <th scope="col">{t('people.state')}</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {tokens.data?.map((k) => (
            <tr key={k.name}>
              <td>{k.properties.displayName}</td>
              <td>{k.properties.subject}</td>
              <td>{named(t, 'people.roles', k.properties.role)}</td>
              <td>{named(t, 'people.tokenStates', k.properties.state)}</td>
              <td>
                {k.properties.state === 'Active' && (
                  <button type="button" onClick={() => revoke.mutate(k.name)}>
                    {t('people.revoke')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
