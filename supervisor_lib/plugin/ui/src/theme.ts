// Follow Airflow's light/dark switch: Chakra's semantic tokens do it for our components; the charts read the
// resolved colours again when <html>'s class changes.
import { useEffect, useState } from "react";

export function useColorMode(): "light" | "dark" {
  const read = () => (document.documentElement.classList.contains("dark") ? "dark" : "light");
  const [mode, setMode] = useState<"light" | "dark">(read);
  useEffect(() => {
    const observer = new MutationObserver(() => setMode(read()));
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class", "style"] });
    return () => observer.disconnect();
  }, []);
  return mode;
}

/** Series colours readable on both themes. */
export const PALETTE = [
  "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#8c8c8c",
];
