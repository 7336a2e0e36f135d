// The portal's frame: sign-in when there is no session, then the navigation
// for the person's role, the language switch, and the pages.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Navigate, NavLink, Route, Routes } from 'react-router';
import { queryKeys } from './api/keys.js';
import { signOut, whoami } from './api/session.js';
import { session } from './api/transport.js';
import type { Me } from './api/types.js';
import { Toasts, toast } from './components/Toasts.js';
import { LANGUAGES, setLanguage } from './i18n.js';
import { AccountsPage } from './pages/Accounts.js';
import { GalleryPage } from './pages/Gallery.js';
import { HostsPage } from './pages/Hosts.js';
import { LabPage } from './pages/Lab.js';
import { LabsPage } from './pages/Labs.js';
import { MyVmsPage } from './pages/MyVms.js';
import { NewLabPage } from './pages/NewLab.js';
import { OperationsPage } from './pages/Operations.js';
import { PeoplePage } from './pages/People.js';
import { SignInPage } from './pages/SignIn.js';

export function App() {
  const [token, setToken] = useState(session.token);
  if (!token) return <SignInPage onSignedIn={() => setToken(session.token)} />;
  return <SignedIn onSignedOut={() => setToken(null)} />;
}

function SignedIn({ onSignedOut }: { onSignedOut: () => void }) {
  const { t, i18n } = useTranslation();
  const queries = useQueryClient();
  const me = useQuery<Me>({ queryKey: queryKeys.whoami, queryFn: whoami });
  useEffect(() => {
    document.documentElement.lang = i18n.language;
  }, [i18n.language]);
  useEffect(() => {
    if (me.isError) onSignedOut();
  }, [me.isError, onSignedOut]);
  if (!me.data) return <p className="loading">…</p>;
  const staff = me.data.role !== 'user';
  return (
    <>
      <a className="skip" href="#main">
        {t('app.skip')}
      </a>
      <header className="top">
        <span className="brand">{t('app.name')}</span>
        <nav aria-label={t('nav.label')}>
          <NavLink to="/my-vms">{t('nav.myVms')}</NavLink>
          {staff && <NavLink to="/labs">{t('nav.labs')}</NavLink>}
          {staff && <NavLink to="/gallery">{t('nav.gallery')}</NavLink>}
          {me.data.role === 'admin' && <NavLink to="/accounts">{t('accounts.title')}</NavLink>}
          {me.data.role === 'admin' && <NavLink to="/people">{t('people.title')}</NavLink>}
          {staff && <NavLink to="/hosts">{t('nav.hosts')}</NavLink>}
          <NavLink to="/operations">{t('nav.operations')}</NavLink>
        </nav>
        <label className="lang">
          {t('app.language')}{' '}
          <select
            value={i18n.language}
            onChange={(e) => void setLanguage(e.target.value).catch((err: Error) => toast(t('errors.generic', { message: err.message }), 'error'))}
          >
            {LANGUAGES.map((l) => (
              <option key={l.code} value={l.code}>
                {l.name}
              </option>
            ))}
          </select>
        </label>
        <span className="who">{me.data.subject}</span>
        <button
          type="button"
          onClick={async () => {
            await signOut();
            queries.clear();
            onSignedOut();
          }}
        >
          {t('app.signOut')}
        </button>
      </header>
      <main id="main">
        <Routes>
          <Route path="/my-vms" element={<MyVmsPage />} />
          {staff && <Route path="/labs" element={<LabsPage />} />}
          {staff && <Route path="/labs/new" element={<NewLabPage />} />}
          {staff && <Route path="/labs/:rg/:lab" element={<LabPage />} />}
          {staff && <Route path="/gallery" element={<GalleryPage />} />}
          {me.data.role === 'admin' && <Route path="/accounts" element={<AccountsPage />} />}
          {me.data.role === 'admin' && <Route path="/people" element={<PeoplePage />} />}
          {staff && <Route path="/hosts" element={<HostsPage admin={me.data.role === 'admin'} />} />}
          <Route path="/operations" element={<OperationsPage />} />
          <Route path="*" element={<Navigate to={staff ? '/labs' : '/my-vms'} replace />} />
        </Routes>
      </main>
      <Toasts />
    </>
  );
}
