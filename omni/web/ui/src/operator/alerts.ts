// A new offer must be noticed when the window is in the background: desktop notification
// (once the operator allowed it) and a short beep. Browsers only allow both after a user
// gesture, so the first click on the page asks for permission and unlocks audio.

let audio: AudioContext | null = null;

export function armOnFirstClick(): void {
  const arm = (): void => {
    document.removeEventListener("click", arm, true);
    try {
      audio = new AudioContext();
    } catch {
      audio = null;
    }
    if ("Notification" in window && Notification.permission === "default") {
      void Notification.requestPermission();
    }
  };
  document.addEventListener("click", arm, true);
}

export function beep(): void {
  if (!audio) return;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = "sine";
  osc.frequency.value = 880;
  gain.gain.setValueAtTime(0.15, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.35);
}

export function notify(title: string, body: string, onClick: () => void): void {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  // Notification text is plain text by specification; nothing here is parsed as HTML.
  const note = new Notification(title, { body, tag: "omni-offer" });
  note.onclick = () => {
    window.focus();
    onClick();
    note.close();
  };
}
