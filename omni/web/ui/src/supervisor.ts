import { boot } from "./common";

const data = boot();
document.getElementById("app")?.setAttribute("data-user", String(data.user.id));
