//! Devices: installed devices are kept, and the plan says so.
//!
//! What Sysprep does (sysprep-effects §6.4): Generalize.xml's `sppnp.dll!Sysprep_Generalize_Pnp`
//! (0x500) removes device instances and device-specific settings, resets boot-critical driver
//! settings and purges device logs, unless the generalize-pass answer-file setting
//! `Microsoft-Windows-PnpSysprep/PersistAllDeviceInstalls` is true [D: MS-DRIVERS,
//! MS-UNATTEND-PNP]. Driver-store packages stay either way [O].
//!
//! What reseal does: it never edits `ControlSet00N\Enum`. With `--persist-devices` or
//! `PersistAllDeviceInstalls=true` this is exactly Sysprep's behaviour. Without it, Sysprep would
//! purge devices, which offline is only safe for device classes PnP recreates (§6.4 [I]), so reseal
//! keeps them too, as `/mode:vm` and the reference's recommendation do, and the note says the
//! image should go to the same hardware or hypervisor, where specialize re-detects what changed.

use crate::error::Result;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "devices";

/// Keeps device installs and records the decision.
pub struct Devices;

impl Provider for Devices {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let from_answer = ctx
            .answer
            .and_then(|answer| answer.persist_all_device_installs());
        let persist = ctx.options.persist_devices || from_answer == Some(true);
        let message = if persist {
            "device installs kept (PersistAllDeviceInstalls): the Enum tree and device settings \
             stay as they are, as Sysprep leaves them with PersistAllDeviceInstalls=true"
        } else {
            "device installs kept: Sysprep would remove device instances here \
             (Sysprep_Generalize_Pnp), but reseal cannot purge devices safely offline, so the Enum \
             tree stays as with PersistAllDeviceInstalls=true; deploy to the same hardware or \
             hypervisor, where specialize re-detects what differs"
        };
        ctx.note(message);
        Ok(())
    }
}
