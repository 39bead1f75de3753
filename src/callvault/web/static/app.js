// callvault: page navigation that keeps the docked player playing, and the player.
"use strict";
