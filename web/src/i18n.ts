// Every text of the portal, in English, Korean, Traditional Chinese and
// Russian (the languages of the source documents). The language follows the
// browser and can be switched; the choice is kept in the browser.
import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';

export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'ko', name: '한국어' },
  { code: 'zh-TW', name: '繁體中文' },
  { code: 'ru', name: 'Русский' },
] as const;

const en = {
  app: { name: 'labforge', language: 'Language', signOut: 'Sign out', skip: 'Skip to content' },
  nav: { myVms: 'My VMs', labs: 'Labs', gallery: 'Gallery', operations: 'Operations' },
  signIn: {
    title: 'Sign in',
    email: 'Email',
    password: 'Password',
    submit: 'Sign in',
    busy: 'Signing in…',
    token: 'Or sign in with an API token',
    tokenLabel: 'API token',
    tokenSubmit: 'Use token',
  },
  vm: {
    title: 'My VMs',
    empty: 'You have no VM yet. When your teacher publishes a lab you are in, your VM appears here.',
    lab: 'Lab',
    state: 'State',
    connect: 'Connect',
    start: 'Start',
    stop: 'Stop',
    reset: 'Reset',
    resetConfirm: 'Reset this VM? Everything changed on it since it was created is lost.',
    usage: 'Used {{used}} of {{quota}} hours',
    notRunning: 'Start the VM to connect.',
    states: {
      Stopped: 'Stopped',
      Starting: 'Starting',
      Running: 'Running',
      Stopping: 'Stopping',
      ResettingPassword: 'Resetting password',
      Reimaging: 'Resetting',
      Redeploying: 'Redeploying',
      Failed: 'Failed',
    },
  },
  labs: {
    title: 'Labs',
    empty: 'No labs yet. Create one from a lab account image.',
    name: 'Name',
    state: 'State',
    image: 'Image',
    seats: 'Seats',
  },
  gallery: { title: 'Gallery', empty: 'No galleries yet. An admin creates one.', name: 'Name', region: 'Region' },
  ops: { done: '{{what}} finished', failed: '{{what}} failed: {{error}}' },
  errors: { generic: 'Something went wrong: {{message}}' },
};

type Messages = typeof en;

const ko: Messages = {
  app: { name: 'labforge', language: '언어', signOut: '로그아웃', skip: '본문으로 건너뛰기' },
  nav: { myVms: '내 VM', labs: '랩', gallery: '갤러리', operations: '작업' },
  signIn: {
    title: '로그인',
    email: '이메일',
    password: '암호',
    submit: '로그인',
    busy: '로그인하는 중…',
    token: '또는 API 토큰으로 로그인',
    tokenLabel: 'API 토큰',
    tokenSubmit: '토큰 사용',
  },
  vm: {
    title: '내 VM',
    empty: '아직 VM이 없습니다. 교사가 내가 속한 랩을 게시하면 여기에 VM이 나타납니다.',
    lab: '랩',
    state: '상태',
    connect: '연결',
    start: '시작',
    stop: '중지',
    reset: '초기화',
    resetConfirm: '이 VM을 초기화할까요? 만든 뒤에 바뀐 내용이 모두 사라집니다.',
    usage: '{{quota}}시간 중 {{used}}시간 사용',
    notRunning: '연결하려면 VM을 시작하세요.',
    states: {
      Stopped: '중지됨',
      Starting: '시작하는 중',
      Running: '실행 중',
      Stopping: '중지하는 중',
      ResettingPassword: '암호 재설정 중',
      Reimaging: '초기화하는 중',
      Redeploying: '다시 배포하는 중',
      Failed: '실패',
    },
  },
  labs: { title: '랩', empty: '아직 랩이 없습니다. 랩 계정 이미지에서 만드세요.', name: '이름', state: '상태', image: '이미지', seats: '좌석' },
  gallery: { title: '갤러리', empty: '아직 갤러리가 없습니다. 관리자가 만듭니다.', name: '이름', region: '지역' },
  ops: { done: '{{what}} 완료', failed: '{{what}} 실패: {{error}}' },
  errors: { generic: '문제가 발생했습니다: {{message}}' },
};

const zhTW: Messages = {
  app: { name: 'labforge', language: '語言', signOut: '登出', skip: '跳至內容' },
  nav: { myVms: '我的虛擬機器', labs: '實驗室', gallery: '資源庫', operations: '作業' },
  signIn: {
    title: '登入',
    email: '電子郵件',
    password: '密碼',
    submit: '登入',
    busy: '正在登入…',
    token: '或使用 API 權杖登入',
    tokenLabel: 'API 權杖',
    tokenSubmit: '使用權杖',
  },
  vm: {
    title: '我的虛擬機器',
    empty: '您還沒有虛擬機器。老師發佈您所在的實驗室後，虛擬機器會顯示在這裡。',
    lab: '實驗室',
    state: '狀態',
    connect: '連線',
    start: '啟動',
    stop: '停止',
    reset: '重設',
    resetConfirm: '要重設這部虛擬機器嗎？建立後所做的變更都會遺失。',
    usage: '已使用 {{used}} / {{quota}} 小時',
    notRunning: '請先啟動虛擬機器再連線。',
    states: {
      Stopped: '已停止',
      Starting: '正在啟動',
      Running: '執行中',
      Stopping: '正在停止',
      ResettingPassword: '正在重設密碼',
      Reimaging: '正在重設',
      Redeploying: '正在重新部署',
      Failed: '失敗',
    },
  },
  labs: { title: '實驗室', empty: '還沒有實驗室。請從實驗室帳戶的映像建立。', name: '名稱', state: '狀態', image: '映像', seats: '座位' },
  gallery: { title: '資源庫', empty: '還沒有資源庫。由管理員建立。', name: '名稱', region: '區域' },
  ops: { done: '{{what}} 已完成', failed: '{{what}} 失敗：{{error}}' },
  errors: { generic: '發生錯誤：{{message}}' },
};

const ru: Messages = {
  app: { name: 'labforge', language: 'Язык', signOut: 'Выйти', skip: 'Перейти к содержимому' },
  nav: { myVms: 'Мои ВМ', labs: 'Лаборатории', gallery: 'Коллекция', operations: 'Операции' },
  signIn: {
    title: 'Вход',
    email: 'Эл. почта',
    password: 'Пароль',
    submit: 'Войти',
    busy: 'Выполняется вход…',
    token: 'Или войдите с токеном API',
    tokenLabel: 'Токен API',
    tokenSubmit: 'Использовать токен',
  },
  vm: {
    title: 'Мои ВМ',
    empty: 'У вас пока нет ВМ. Когда преподаватель опубликует вашу лабораторию, ВМ появится здесь.',
    lab: 'Лаборатория',
    state: 'Состояние',
    connect: 'Подключение',
    start: 'Запустить',
    stop: 'Остановить',
    reset: 'Сбросить',
    resetConfirm: 'Сбросить эту ВМ? Все изменения с момента её создания будут потеряны.',
    usage: 'Использовано {{used}} из {{quota}} ч',
    notRunning: 'Запустите ВМ, чтобы подключиться.',
    states: {
      Stopped: 'Остановлена',
      Starting: 'Запускается',
      Running: 'Работает',
      Stopping: 'Останавливается',
      ResettingPassword: 'Сброс пароля',
      Reimaging: 'Сбрасывается',
      Redeploying: 'Повторное развертывание',
      Failed: 'Ошибка',
    },
  },
  labs: {
    title: 'Лаборатории',
    empty: 'Лабораторий пока нет. Создайте её из образа учетной записи лаборатории.',
    name: 'Имя',
    state: 'Состояние',
    image: 'Образ',
    seats: 'Места',
  },
  gallery: { title: 'Коллекция', empty: 'Коллекций пока нет. Её создает администратор.', name: 'Имя', region: 'Регион' },
  ops: { done: '{{what}}: готово', failed: '{{what}}: ошибка: {{error}}' },
  errors: { generic: 'Что-то пошло не так: {{message}}' },
};

const stored = typeof localStorage !== 'undefined' ? localStorage.getItem('labforge.language') : null;
const browser = typeof navigator !== 'undefined' ? navigator.language : 'en';
const pickLanguage = (tag: string) => {
  if (/^zh/i.test(tag)) return 'zh-TW';
  return LANGUAGES.find((l) => tag.toLowerCase().startsWith(l.code.toLowerCase()))?.code ?? 'en';
};

void i18n.use(initReactI18next).init({
  resources: { en: { translation: en }, ko: { translation: ko }, 'zh-TW': { translation: zhTW }, ru: { translation: ru } },
  lng: stored ?? pickLanguage(browser),
  fallbackLng: 'en',
  interpolation: { escapeValue: false },
});

export function setLanguage(code: string): void {
  localStorage.setItem('labforge.language', code);
  void i18n.changeLanguage(code);
  document.documentElement.lang = code;
}

export default i18n;
