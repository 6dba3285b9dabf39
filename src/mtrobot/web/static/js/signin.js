import { api, showProblem } from "/static/js/api.js";

const form = document.getElementById("signin");
const next = new URLSearchParams(location.search).get("next");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await api("POST", "/auth/login", { email: form.email.value.trim(), password: form.password.value });
    location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard");
  } catch (error) {
    showProblem(form, error);
    button.disabled = false;
  }
});
