import { describe, expect, test } from "bun:test";
import { signatureUrlOf } from "../../../controller/plans/signature-url.ts";

const SERVER = "http://10.0.2.100:8080";

describe("signed remote content", () => {
  const url = `${SERVER}/run.sh`;

  test("the signature is at URL.sig, also with a query", () => {
    expect(signatureUrlOf(url)).toBe(`${SERVER}/run.sh.sig`);
    expect(signatureUrlOf(`${SERVER}/run.sh?host=a`)).toBe(`${SERVER}/run.sh.sig?host=a`);
  });
});
