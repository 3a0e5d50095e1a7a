// Loaded into ComfyUI's own editor: menu entries that open the studio and send it the open workflow.
import { app } from "../../scripts/app.js";
import { sendToStudio } from "./studio_send.js";

function toast(kind, title, text) {
  const toasts = app.extensionManager?.toast;
  if (toasts?.add) toasts.add({ severity: kind, summary: title, detail: text, life: kind === "error" ? 8000 : 5000 });
  else window.alert(`${title}\n\n${text}`);
}

const ui = {
  confirm: (question) => window.confirm(question),
  toast,
  open: (url) => window.open(url, "_blank", "noopener"),
};

app.registerExtension({
  name: "comfyui_studio.menu",
  commands: [
    {
      id: "comfyui-studio.open",
      label: "Open Studio",
      icon: "pi pi-images",
      function: () => window.open("/studio", "_blank", "noopener"),
    },
    {
      id: "comfyui-studio.send",
      label: "Send workflow to Studio",
      icon: "pi pi-send",
      function: () => sendToStudio(app, ui),
    },
  ],
  menuCommands: [{ path: ["Studio"], commands: ["comfyui-studio.open", "comfyui-studio.send"] }],
});
