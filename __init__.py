"""ComfyUI Studio: a custom-node pack that mounts a full image studio at /studio."""
