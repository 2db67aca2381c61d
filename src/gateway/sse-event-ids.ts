import type { Plugin } from "graphql-yoga";

/**
 * Gives each SSE event of a subscription its `eventId` as the SSE `id`, so a
 * browser's EventSource sends it back as Last-Event-ID when it reconnects and
 * the subscription resumes after it. Yoga writes the frames; this only adds
 * the id line to those whose payload carries an eventId.
 */
export function useSseEventIds(): Plugin {
  return {
    onResponse({ response, setResponse, fetchAPI }) {
      if (!response.body || !response.headers.get("content-type")?.startsWith("text/event-stream")) return;
      const decoder = new TextDecoder();
      const encoder = new fetchAPI.TextEncoder();
      let pending = "";
      const frames = new fetchAPI.TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          pending += decoder.decode(chunk, { stream: true });
          let end = pending.indexOf("\n\n");
          while (end >= 0) {
            const frame = pending.slice(0, end + 2);
            pending = pending.slice(end + 2);
            controller.enqueue(encoder.encode(withId(frame)));
            end = pending.indexOf("\n\n");
          }
        },
        flush(controller) {
          if (pending) controller.enqueue(encoder.encode(pending));
        },
      });
      setResponse(new fetchAPI.Response(response.body.pipeThrough(frames), response));
    },
  };
}

function withId(frame: string): string {
  const data = frame.split("\n").find((line) => line.startsWith("data: "));
  if (!data) return frame;
  try {
    const result = JSON.parse(data.slice(6)) as { data?: Record<string, { eventId?: unknown } | null> };
    const eventId = Object.values(result.data ?? {})[0]?.eventId;
    return typeof eventId === "string" ? `id: ${eventId}\n${frame}` : frame;
  } catch {
    return frame;
  }
}
