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
  lab: {
    back: 'All labs',
    template: 'Template VM',
    noTemplate: 'This lab has no template VM: student VMs are made from the image as it is.',
    publish: 'Publish',
    publishAgain: 'Publish again',
    republishWarning: 'Publishing again replaces every student VM: what students changed on them is lost. Publish again?',
    published: 'Published: {{count}} student VMs',
    students: 'Student VMs',
    export: 'Export to gallery',
  },
  exportDialog: {
    title: 'Export the template to the gallery',
    intro: 'The template disk is saved as a Specialized image; only what changed since its image is stored.',
    createNew: 'Create a new image',
    updateExisting: 'Update the existing image',
    updateHelp: 'Adds the next version of the image this lab came from or was last exported to. New labs from it get this version.',
    name: 'Image name',
    submit: 'Export',
    cancel: 'Cancel',
    running: 'Exporting: {{percent}}%',
    done: 'Saved as image {{image}}, version {{version}}.',
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
  lab: {
    back: '모든 랩',
    template: '템플릿 VM',
    noTemplate: '이 랩에는 템플릿 VM이 없습니다. 학생 VM은 이미지 그대로 만들어집니다.',
    publish: '게시',
    publishAgain: '다시 게시',
    republishWarning: '다시 게시하면 모든 학생 VM이 교체되어 학생이 바꾼 내용이 사라집니다. 다시 게시할까요?',
    published: '게시됨: 학생 VM {{count}}개',
    students: '학생 VM',
    export: '갤러리로 내보내기',
  },
  exportDialog: {
    title: '템플릿을 갤러리로 내보내기',
    intro: '템플릿 디스크가 특수화된 이미지로 저장됩니다. 이미지 이후 바뀐 부분만 저장됩니다.',
    createNew: '새 이미지 만들기',
    updateExisting: '기존 이미지 업데이트',
    updateHelp: '이 랩의 원본 이미지(또는 마지막으로 내보낸 이미지)의 다음 버전을 추가합니다. 이후 새 랩은 이 버전을 사용합니다.',
    name: '이미지 이름',
    submit: '내보내기',
    cancel: '취소',
    running: '내보내는 중: {{percent}}%',
    done: '이미지 {{image}}, 버전 {{version}}(으)로 저장했습니다.',
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
  lab: {
    back: '所有實驗室',
    template: '範本虛擬機器',
    noTemplate: '此實驗室沒有範本虛擬機器：學生虛擬機器直接由映像建立。',
    publish: '發佈',
    publishAgain: '重新發佈',
    republishWarning: '重新發佈會取代所有學生虛擬機器，學生所做的變更都會遺失。要重新發佈嗎？',
    published: '已發佈：{{count}} 部學生虛擬機器',
    students: '學生虛擬機器',
    export: '匯出至資源庫',
  },
  exportDialog: {
    title: '將範本匯出至資源庫',
    intro: '範本磁碟會儲存為特殊化映像；只會儲存自映像以來變更的部分。',
    createNew: '建立新映像',
    updateExisting: '更新現有映像',
    updateHelp: '為此實驗室的來源映像（或上次匯出的映像）新增下一個版本。之後建立的實驗室會使用此版本。',
    name: '映像名稱',
    submit: '匯出',
    cancel: '取消',
    running: '正在匯出：{{percent}}%',
    done: '已儲存為映像 {{image}}，版本 {{version}}。',
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
  lab: {
    back: 'Все лаборатории',
    template: 'Шаблонная ВМ',
    noTemplate: 'У этой лаборатории нет шаблонной ВМ: ВМ студентов создаются из образа как есть.',
    publish: 'Опубликовать',
    publishAgain: 'Опубликовать снова',
    republishWarning: 'Повторная публикация заменит все ВМ студентов: их изменения будут потеряны. Опубликовать снова?',
    published: 'Опубликовано: ВМ студентов — {{count}}',
    students: 'ВМ студентов',
    export: 'Экспорт в коллекцию',
  },
  exportDialog: {
    title: 'Экспорт шаблона в коллекцию',
    intro: 'Диск шаблона сохраняется как специализированный образ; хранится только то, что изменилось с момента создания образа.',
    createNew: 'Создать новый образ',
    updateExisting: 'Обновить существующий образ',
    updateHelp:
      'Добавляет следующую версию образа, из которого создана лаборатория (или в который она была экспортирована). Новые лаборатории получат эту версию.',
    name: 'Имя образа',
    submit: 'Экспортировать',
    cancel: 'Отмена',
    running: 'Экспорт: {{percent}}%',
    done: 'Сохранено как образ {{image}}, версия {{version}}.',
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
