// A response body that breaks after its first bytes, so a client sees a
// dropped connection (ECONNRESET), not a short clean file: Bun resets the
// connection when the stream errors. The pause first lets the bytes before it
// reach the client; without it the reset can overtake them.

export function cutOff(body: ReadableStream<Uint8Array>, bytes: number, pauseMs: number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let left = bytes;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (left === 0) {
        await Bun.sleep(pauseMs);
        await reader.cancel();
        controller.error();
        return;
      }
      const { done, value } = await reader.read();
      if (done) return controller.close();
      const part = value.subarray(0, left);
      left -= part.length;
      controller.enqueue(part);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
