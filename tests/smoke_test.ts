import { assertEquals } from "@std/assert";
import { VERSION } from "../mod.ts";

Deno.test("mod.ts exports a version", () => {
  assertEquals(typeof VERSION, "string");
});
