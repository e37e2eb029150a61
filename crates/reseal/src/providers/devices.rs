//! Devices: installed devices are kept, and the storage controllers a clone may boot from are
//! enabled at boot.
//!
//! What Sysprep does (sysprep-effects §6.4): Generalize.xml's `sppnp.dll!Sysprep_Generalize_Pnp`
//! (0x500) removes device instances and device-specific settings, resets boot-critical driver
//! settings and purges device logs, unless the generalize-pass answer-file setting
//! `Microsoft-Windows-PnpSysprep/PersistAllDeviceInstalls` is true [D: MS-DRIVERS,
//! MS-UNATTEND-PNP]. Driver-store packages stay either way [O].
//!
//! What reseal does:
//! - It never edits `ControlSet00N\Enum`. With `--persist-devices` or
//!   `PersistAllDeviceInstalls=true` this is exactly Sysprep's behaviour. Without it, Sysprep
//!   would purge devices, which offline is only safe for device classes PnP recreates (§6.4
//!   [I]), so reseal keeps them too, as `/mode:vm` and the reference's recommendation do.
//! - It makes every installed boot-storage controller driver ([`BOOT_STORAGE_DRIVERS`]) load at
//!   boot, so a clone boots on another controller or hypervisor instead of stopping with
//!   INACCESSIBLE_BOOT_DEVICE (0x7B): `Start` 0, and no `StartOverride` value that overrides it
//!   (§6.4; what virt-v2v does offline for virtio and AWS has Sysprep_Generalize_Pnp do before
//!   moving an instance to NVMe [O]). A finished Windows 10 installation has every in-box
//!   storage driver at `Start` 0 with `StartOverride\0` = 3 for the controllers it did not boot
//!   from (the real SYSTEM hive `hives/regipy/SYSTEM_B`): the override is what keeps them from
//!   loading. Windows 7 has no `StartOverride` and needs a `CriticalDeviceDatabase` entry
//!   instead, which reseal does not write: the plan says so.

use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::SYSTEM;
use crate::providers::support::{control_set_key, windows_build};
use crate::providers::{PlanContext, Provider};

const NAME: &str = "devices";

const SOURCE_BOOT_STORAGE: &str = "sysprep-effects §6.4 boot-storage drivers: Start=0 and no \
     StartOverride [D: MS-DRIVERS, KB 922976; O: AWS Sysprep_Generalize_Pnp, virt-v2v; observed: \
     SYSTEM_B]";

/// The first build with `StartOverride` (Windows 8); before it, boot storage needs a
/// `CriticalDeviceDatabase` entry.
const FIRST_BUILD_WITH_START_OVERRIDE: u32 = 9200;

/// Storage controller drivers a Windows image may have to boot from on other hardware or
/// another hypervisor: the service name, and the controllers it drives.
pub const BOOT_STORAGE_DRIVERS: &[(&str, &str)] = &[
    ("storahci", "AHCI SATA controllers"),
    ("msahci", "AHCI SATA controllers (Windows 7)"),
    ("stornvme", "NVMe controllers"),
    ("iaStorV", "Intel RAID and AHCI controllers"),
    ("atapi", "IDE controllers"),
    ("intelide", "Intel IDE controllers"),
    ("pciide", "PCI IDE controllers"),
    ("storvsc", "Hyper-V and Azure synthetic SCSI"),
    ("LSI_SAS", "LSI Logic SAS (VMware, Hyper-V)"),
    ("LSI_SAS2i", "LSI SAS2 controllers"),
    ("LSI_SAS3i", "LSI SAS3 controllers"),
    ("megasas", "LSI MegaRAID SAS controllers"),
    ("pvscsi", "VMware paravirtual SCSI"),
    ("viostor", "virtio block devices"),
    ("vioscsi", "virtio SCSI"),
    ("AWSNVMe", "Amazon EC2 NVMe"),
    ("xenvbd", "Xen virtual block devices"),
];

/// Keeps device installs, enables boot-storage drivers, and records both.
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
        enable_boot_storage_drivers(ctx)
    }
}

/// `Start` 0 and no overriding `StartOverride` value for every installed boot-storage driver.
fn enable_boot_storage_drivers(ctx: &mut PlanContext<'_, '_>) -> Result<()> {
    let services = control_set_key(ctx.image, "Services")?;
    let mut enabled = Vec::new();
    for &(service, _) in BOOT_STORAGE_DRIVERS {
        let key = format!(r"{services}\{service}");
        if !ctx.image.key_exists(SYSTEM, &key)? || !driver_installed(ctx, &key, service)? {
            continue;
        }
        let override_key = format!(r"{key}\StartOverride");
        let overrides = ctx.image.values(SYSTEM, &override_key)?;
        let start = ctx.image.dword_value(SYSTEM, &key, "Start")?;
        let mut planner = ctx.source(SOURCE_BOOT_STORAGE);
        if start != Some(0) {
            planner.set_value(SYSTEM, &key, "Start", ValueType::DWORD, &0u32.to_le_bytes())?;
        }
        for (name, _, _) in overrides {
            // A value of 0 asks for boot start, as `Start` does; any other keeps the driver
            // from loading at boot.
            if planner.image().dword_value(SYSTEM, &override_key, &name)? != Some(0) {
                planner.delete_value(SYSTEM, &override_key, &name)?;
            }
        }
        enabled.push(service);
    }
    if enabled.is_empty() {
        return Ok(());
    }
    ctx.note(format!(
        "boot-storage drivers load at boot, so a clone boots on other storage controllers: {}",
        enabled.join(", ")
    ));
    if windows_build(ctx.image)?.is_some_and(|build| build < FIRST_BUILD_WITH_START_OVERRIDE) {
        ctx.note(
            "this Windows predates Windows 8: a storage controller the installation has never \
             seen also needs a CriticalDeviceDatabase entry, which reseal does not write; \
             deploy to the same kind of controller",
        );
    }
    Ok(())
}

/// `true` when the driver file of the service at `key` is in the image (its `ImagePath`,
/// `System32\drivers\SERVICE.sys` by default): a service whose driver is missing is left alone,
/// since loading it at boot would fail.
fn driver_installed(ctx: &mut PlanContext<'_, '_>, key: &str, service: &str) -> Result<bool> {
    let image_path = ctx.image.string_value(SYSTEM, key, "ImagePath")?;
    let path = driver_path(image_path.as_deref(), service);
    ctx.image.exists(&path)
}

/// The image path of a driver from its `ImagePath` (`System32\drivers\x.sys` or
/// `\SystemRoot\System32\drivers\x.sys`, both below the Windows folder).
fn driver_path(image_path: Option<&str>, service: &str) -> String {
    let below_windows = image_path.and_then(|path| {
        let lower = path.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix(r"\systemroot\") {
            Some(path[path.len() - rest.len()..].to_string())
        } else if lower.starts_with(r"system32\") {
            Some(path.to_string())
        } else {
            None
        }
    });
    format!(
        r"Windows\{}",
        below_windows.unwrap_or_else(|| format!(r"System32\drivers\{service}.sys"))
    )
}

#[cfg(test)]
mod tests {
    use super::driver_path;

    #[test]
    fn driver_paths_are_found_below_the_windows_folder() {
        assert_eq!(
            driver_path(Some(r"System32\drivers\storahci.sys"), "storahci"),
            r"Windows\System32\drivers\storahci.sys"
        );
        assert_eq!(
            driver_path(Some(r"\SystemRoot\System32\drivers\vhdmp.sys"), "vhdmp"),
            r"Windows\System32\drivers\vhdmp.sys"
        );
        assert_eq!(
            driver_path(Some(r"\??\C:\drivers\odd.sys"), "viostor"),
            r"Windows\System32\drivers\viostor.sys"
        );
        assert_eq!(
            driver_path(None, "pvscsi"),
            r"Windows\System32\drivers\pvscsi.sys"
        );
    }
}
