/**
 * The few Material Design Icons the phone and the demo menus use, as inline SVG paths (tree-shaken
 * from @mdi/js at build time; the MDI font is never loaded). Unknown names get a generic icon.
 */
import {
  mdiAccount,
  mdiApps,
  mdiArrowLeft,
  mdiBackspaceOutline,
  mdiBug,
  mdiCart,
  mdiChat,
  mdiClose,
  mdiCog,
  mdiContacts,
  mdiCreditCard,
  mdiDialpad,
  mdiEmail,
  mdiHeadset,
  mdiHelpCircleOutline,
  mdiHistory,
  mdiHome,
  mdiInformationOutline,
  mdiLogout,
  mdiMenu,
  mdiMicrophone,
  mdiMicrophoneOff,
  mdiPause,
  mdiPhone,
  mdiPhoneForward,
  mdiPhoneHangup,
  mdiPhoneIncoming,
  mdiPhoneMissed,
  mdiPhoneOutgoing,
  mdiSignalCellular1,
  mdiSignalCellular2,
  mdiSignalCellular3,
  mdiSignalCellularOutline,
  mdiStar,
  mdiVoicemail,
  mdiWallet,
  mdiWeb,
} from '@mdi/js';

const PATHS: Record<string, string> = {
  account: mdiAccount,
  apps: mdiApps,
  'arrow-left': mdiArrowLeft,
  'backspace-outline': mdiBackspaceOutline,
  bug: mdiBug,
  cart: mdiCart,
  chat: mdiChat,
  close: mdiClose,
  cog: mdiCog,
  contacts: mdiContacts,
  'credit-card': mdiCreditCard,
  dialpad: mdiDialpad,
  email: mdiEmail,
  headset: mdiHeadset,
  'help-circle-outline': mdiHelpCircleOutline,
  history: mdiHistory,
  home: mdiHome,
  'information-outline': mdiInformationOutline,
  logout: mdiLogout,
  menu: mdiMenu,
  microphone: mdiMicrophone,
  'microphone-off': mdiMicrophoneOff,
  pause: mdiPause,
  phone: mdiPhone,
  'phone-forward': mdiPhoneForward,
  'phone-hangup': mdiPhoneHangup,
  'phone-incoming': mdiPhoneIncoming,
  'phone-missed': mdiPhoneMissed,
  'phone-outgoing': mdiPhoneOutgoing,
  'signal-cellular-1': mdiSignalCellular1,
  'signal-cellular-2': mdiSignalCellular2,
  'signal-cellular-3': mdiSignalCellular3,
  'signal-cellular-outline': mdiSignalCellularOutline,
  star: mdiStar,
  voicemail: mdiVoicemail,
  wallet: mdiWallet,
  web: mdiWeb,
};

/** `mdi-cart` or `cart` -> its path; anything else -> the generic "apps" icon. */
export function iconPath(name: string): string {
  const key = name.trim().toLowerCase().replace(/^mdi[-_]/, '');
  return PATHS[key] ?? mdiApps;
}

export function hasIcon(name: string): boolean {
  return name.trim().toLowerCase().replace(/^mdi[-_]/, '') in PATHS;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A decorative 24x24 icon (hidden from screen readers: the control carries the name). */
export function icon(name: string, size = 24): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('icon');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', iconPath(name));
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}
