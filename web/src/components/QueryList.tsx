// How every page shows a list it reads from the server, the same way: the
// server's refusal as an alert, an "empty" text when there is nothing, what the
// page shows while it loads (nothing unless it says), and then the list itself
// (a DataTable, cards, a bulleted list).
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';

export function QueryList<T>({
  query,
  empty,
  loading = null,
  frame = false,
  children,
}: {
  /** The read (a TanStack Query result, or any value with the same three fields). */
  query: { data: T[] | undefined; isError: boolean; error: unknown };
  /** Said when the list is empty. */
  empty?: string;
  loading?: ReactNode;
  /** Show the list's frame (a table's headers, the list element) while loading and when empty, too. */
  frame?: boolean;
  children: (rows: T[]) => ReactNode;
}) {
  const { t } = useTranslation();
  const rows = query.data;
  return (
    <>
      {query.isError && <p role="alert">{t('errors.generic', { message: (query.error as Error).message })}</p>}
      {rows === undefined && !query.isError && loading}
      {rows?.length === 0 && empty !== undefined && <p className="empty">{empty}</p>}
      {frame || rows?.length ? children(rows ?? []) : null}
    </>
  );
}
