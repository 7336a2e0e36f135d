// Short messages when an operation ends, announced to screen readers.
import { useEffect, useState } from 'react';

type Toast = { id: number; text: string; kind: 'ok' | 'error' };
let push: ((t: Omit<Toast, 'id'>) => void) | undefined;

export function toast(text: string, kind: Toast['kind'] = 'ok'): void {
  push?.({ text, kind });
}

export function Toasts() {
  const [items, setItems] = useState<Toast[]>([]);
  useEffect(() => {
    let n = 0;
    push = (t) => {
      const id = ++n;
      setItems((xs) => [...xs, { ...t, id }]);
      setTimeout(() => setItems((xs) => xs.filter((x) => x.id !== id)), 8000);
    };
    return () => {
      push = undefined;
    };
  }, []);
  return (
    <div className="toasts" role="status" aria-live="polite">
      {items.map((t) => (
        <p key={t.id} className={`toast ${t.kind}`}>
          {t.text}
        </p>
      ))}
    </div>
  );
}
