// A VM's screen in the browser: noVNC over the API's VNC WebSocket (a
// one-minute ticket in the URL). Keyboard and mouse go to the VM.
import RFB from '@novnc/novnc';
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { consoleUrls } from '../api/vms.js';

export function ScreenDialog({ vmId, name, onClose }: { vmId: string; name: string; onClose: () => void }) {
  const { t } = useTranslation();
  const screen = useRef<HTMLDivElement>(null);
  const close = useRef<HTMLButtonElement>(null);
  const [status, setStatus] = useState<string>(t('console.connecting'));
  useEffect(() => {
    close.current?.focus();
    let rfb: RFB | undefined;
    let gone = false;
    void consoleUrls(vmId)
      .then((u) => {
        if (gone || !screen.current) return;
        const url = u.vncUrl.replace(/^wss?:\/\/[^/]+/, `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`);
        rfb = new RFB(screen.current, url);
        rfb.scaleViewport = true;
        rfb.addEventListener('connect', () => setStatus(''));
        rfb.addEventListener('disconnect', () => setStatus(t('console.ended', { reason: '' })));
      })
      .catch((err: Error) => setStatus(err.message));
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && e.target === close.current) onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => {
      gone = true;
      rfb?.disconnect();
      window.removeEventListener('keydown', onKey);
    };
  }, [vmId, onClose, t]);
  return (
    <div className="backdrop">
      <div role="dialog" aria-modal="true" aria-labelledby="screen-title" className="dialog wide">
        <h2 id="screen-title">{t('console.screenTitle', { name })}</h2>
        {status && <p role="status">{status}</p>}
        <div ref={screen} className="screen" data-testid="screen" />
        <button ref={close} type="button" onClick={onClose}>
          {t('console.close')}
        </button>
      </div>
    </div>
  );
}
