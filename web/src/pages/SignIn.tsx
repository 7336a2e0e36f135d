// Signing in: email and password, or an API token (kept in this tab only).
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { signIn } from '../api/session.js';
import { ApiError, session } from '../api/transport.js';

export function SignInPage({ onSignedIn }: { onSignedIn: () => void }) {
  const { t } = useTranslation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" className="signin">
      <h1>{t('signIn.title')}</h1>
      <form onSubmit={submit}>
        <label>
          {t('signIn.email')}
          <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          {t('signIn.password')}
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? t('signIn.busy') : t('signIn.submit')}
        </button>
      </form>
      <details>
        <summary>{t('signIn.token')}</summary>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            session.set(token.trim());
            onSignedIn();
          }}
        >
          <label>
            {t('signIn.tokenLabel')}
            <input type="password" value={token} onChange={(e) => setToken(e.target.value)} />
          </label>
          <button type="submit">{t('signIn.tokenSubmit')}</button>
        </form>
      </details>
    </main>
  );
}
