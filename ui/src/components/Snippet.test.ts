import { render } from "@testing-library/svelte";
import { describe, expect, it } from "vitest";
import Snippet from "./Snippet.svelte";

describe("Snippet", () => {
  it("marks hits and renders stored text inert", () => {
    const { container } = render(Snippet, {
      props: {
        parts: [
          { text: "Mor siger <img src=x onerror=alert(1)> om ", hit: false },
          { text: "Søren", hit: true },
        ],
      },
    });
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("mark")?.textContent).toBe("Søren");
    expect(container.textContent).toContain("<img src=x onerror=alert(1)>");
  });
});
