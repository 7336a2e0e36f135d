// A VM's serial console in the browser, read-only, over the API's WebSocket
// (a one-minute ticket in the URL: browsers send no Authorization header on
// WebSockets). The dialog keeps the focus and closes with Escape.
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { consoleUrls } from '../api/vms.js';
import { useDialogFocus } from './dialog.js';

export function ConsoleDialog({ vmId, name, onClose }: { vmId: string; name: string; onClose: () => void }) {
  const { t } = useTranslation();
  const [text, setText] = useState('');
  const [status, setStatus] = useState<string>(t('console.connecting'));
  const close = useRef<HTMLButtonElement>(null);
  const out = useRef<HTMLPreElement>(null);
  useEffect(() => {
    close.current?.focus();
    let ws: WebSocket | undefined;
    let gone = false;
    void consoleUrls(vmId)
      .then((u) => {
        if (gone) return;
        ws = new WebSocket(u.serialUrl.replace(/^wss?:\/\/[^/]+/, `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`));
        ws.onopen = () => setStatus('');
        ws.onmessage = (e) => {
          setText((x) => (x + String(e.data)).slice(-200_000));
          requestAnimationFrame(() => {
            if (out.current) out.current.scrollTop = out.current.scrollHeight;
          });
        };
        ws.onclose = (e) => setStatus(t('console.ended', { reason: e.reason || e.code }));
      })
      .catch((err: Error) => setStatus(err.message));
    return () => {
      gone = true;
      ws?.close();
    };
  }, [vmId, t]);
  const box = useRef<HTMLDivElement>(null);
  useDialogFocus(box, onClose);
  return (
    <div className="backdrop">
      <div ref={box} role="dialog" aria-modal="true" aria-labelledby="console-title" className="dialog wide">
        <h2 id="console-title">{t('console.title', { name })}</h2>
        {status && <p role="status">{status}</p>}
        <pre ref={out} className="serial" data-testid="serial" role="log">
          {text}
        </pre>
        <button ref={close} type="button" onClick={onClose}>
          {t('console.close')}
        </button>
      </div>
    </div>
  );
}
