// Loaded into ComfyUI's own editor: a menu entry that opens the studio.
import { app } from "../../scripts/app.js";

app.registerExtension({
  name: "comfyui_studio.menu",
  commands: [
    {
      id: "comfyui-studio.open",
      label: "Open Studio",
      icon: "pi pi-images",
      function: () => window.open("/studio", "_blank", "noopener"),
    },
  ],
  menuCommands: [{ path: ["Studio"], commands: ["comfyui-studio.open"] }],
});
