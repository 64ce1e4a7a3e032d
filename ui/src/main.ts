import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";

const target = document.getElementById("app");
if (!target) throw new Error("no #app element");
// `?empty`: the memory benchmark's baseline, the same page and bundle with nothing mounted.
const empty = new URLSearchParams(location.search).has("empty");
export default empty ? null : mount(App, { target });
