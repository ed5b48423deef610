/** A tiny typed event emitter. */
export class Emitter<Events extends object> {
  private handlers: { [K in keyof Events]?: Set<(payload: Events[K]) => void> } = {};

  on<K extends keyof Events>(event: K, handler: (payload: Events[K]) => void): () => void {
    (this.handlers[event] ??= new Set()).add(handler);
    return () => this.handlers[event]?.delete(handler);
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const handler of [...(this.handlers[event] ?? [])]) {
      try {
        handler(payload);
      } catch (err) {
        console.error(`[phone] ${String(event)} handler failed`, err);
      }
    }
  }
}
