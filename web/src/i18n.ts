// The portal's languages: English, Korean, Traditional Chinese and Russian (the
// languages of the source documents), with their texts in locales/. English is
// bundled as the fallback; another language is fetched when it is chosen, before
// the page switches to it. The language follows the browser and can be switched;
// the choice is kept in the browser.
import i18n, { type TFunction } from 'i18next';
import { initReactI18next } from 'react-i18next';
import { en } from './locales/en.js';

export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'ko', name: '한국어' },
  { code: 'zh-TW', name: '繁體中文' },
  { code: 'ru', name: 'Русский' },
] as const;

type LanguageCode = (typeof LANGUAGES)[number]['code'];

/** Each language but English, fetched on demand (its own chunk in the build). */
const LOADERS = {
  ko: () => import('./locales/ko.js'),
  'zh-TW': () => import('./locales/zh-TW.js'),
  ru: () => import('./locales/ru.js'),
} satisfies Record<Exclude<LanguageCode, 'en'>, () => Promise<{ default: object }>>;

/** A language's texts: English at hand, another fetched (undefined for a code the portal does not know). */
async function texts(code: string): Promise<object | undefined> {
  if (code === 'en') return en;
  return Object.hasOwn(LOADERS, code) ? (await LOADERS[code as keyof typeof LOADERS]()).default : undefined;
}

/** Fetches a language's texts into i18next unless they are there already. */
async function load(code: string): Promise<void> {
  if (i18n.hasResourceBundle(code, 'translation')) return;
  const found = await texts(code);
  if (found) i18n.addResourceBundle(code, 'translation', found);
}

const pickLanguage = (tag: string) => {
  if (/^zh/i.test(tag)) return 'zh-TW';
  return LANGUAGES.find((l) => tag.toLowerCase().startsWith(l.code.toLowerCase()))?.code ?? 'en';
};

/** Sets i18next up in the stored or the browser's language, its texts fetched first; resolves when the portal can render. */
export async function startI18n(): Promise<void> {
  const stored = typeof localStorage !== 'undefined' ? localStorage.getItem('labforge.language') : null;
  const browser = typeof navigator !== 'undefined' ? navigator.language : 'en';
  const lng = stored ?? pickLanguage(browser);
  // A language that cannot be fetched leaves the English texts in place.
  const own = await texts(lng).catch(() => undefined);
  await i18n.use(initReactI18next).init({
    resources: { en: { translation: en }, ...(own && lng !== 'en' ? { [lng]: { translation: own } } : {}) },
    lng,
    fallbackLng: 'en',
    interpolation: { escapeValue: false },
  });
}

/** A value the server sends (a state, a role…) in the page's language; one the portal does not know is shown as the server wrote it. */
export function named(t: TFunction, group: string, value: string | undefined): string {
  return value ? t(`${group}.${value}`, { defaultValue: value }) : '';
}

/** A date and time in the page's language, in the browser's regional format when the browser speaks that language. */
export function dateTime(iso: string, language: string): string {
  const own = typeof navigator !== 'undefined' ? navigator.languages?.find((l) => l.toLowerCase().startsWith(language.toLowerCase())) : undefined;
  return new Date(iso).toLocaleString(own ?? language);
}

/** Switches the page to another language once its texts are fetched, and remembers the choice. */
export async function setLanguage(code: string): Promise<void> {
  await load(code);
  localStorage.setItem('labforge.language', code);
  await i18n.changeLanguage(code);
  document.documentElement.lang = code;
}

export default i18n;
