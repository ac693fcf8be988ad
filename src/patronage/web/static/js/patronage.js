// Behaviour shared by every page. The content security policy forbids inline scripts,
// so pages declare intent with data attributes and this file acts on them.

// <form data-confirm="Really?">: ask before submitting a destructive action.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
