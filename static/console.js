// Entry point of the console's script: live updates, inline actions,
// copy buttons. Without it every page still renders and every form posts.
import { startLive } from "./live.js";
import { startActions } from "./actions.js";
import { startPreviews } from "./preview.js";
import { startCountdowns } from "./countdown.js";

const live = startLive(document.body);
startActions(document, live);
startPreviews(document);
startCountdowns(document);
