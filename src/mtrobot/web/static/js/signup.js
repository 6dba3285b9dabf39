import { api, showProblem } from "/static/js/api.js";

const form = document.getElementById("signup");
const passwordError = form.querySelector('[data-error-for="password"]');

form.password.addEventListener("input", () => {
  const n = form.password.value.length;
  passwordError.textContent = n > 0 && n < 10 ? `${10 - n} more characters, please.` : "";
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await api("POST", "/auth/register", {
      name: form.name.value.trim(), email: form.email.value.trim(), password: form.password.value,
    });
    location.assign("/onboarding");
  } catch (error) {
    showProblem(form, error);
    button.disabled = false;
  }
});
