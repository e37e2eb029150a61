//! Cloudbase-Init: its plugins run again on the clone's first boot.
//!
//! What Cloudbase-Init does: the plugins of its main stage run once per instance. After each
//! plugin it saves the plugin's status as a value named after the plugin in
//! `HKLM\SOFTWARE\Cloudbase Solutions\Cloudbase-Init\<instance id>\Plugins` (`init.py`
//! `_get_plugins_section`, `osutils/windows.py` `_config_key` and `set_config_value`; without an
//! instance id the section is `Plugins` itself), and skips a plugin whose saved status says it
//! is done. An x86 build on 64-bit Windows writes below `WOW6432Node` (registry redirection).
//!
//! What reseal does: deletes those status keys (an instance key left empty goes with them), so a
//! clone runs every plugin even when its cloud hands it the same instance id. The rest of the
//! installation (configuration, `LocalScripts`, the service) stays as installed.

use crate::error::Result;
use crate::image::{Image, SOFTWARE};
use crate::providers::cloud_agents::CloudAgent;
use crate::providers::support::join;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "cloudbase-init";
const SOURCE: &str = "Cloudbase-Init: plugin status saved per instance id below \
     SOFTWARE\\Cloudbase Solutions\\Cloudbase-Init\\<instance id>\\Plugins [O: init.py \
     _get_plugins_section, osutils/windows.py set_config_value; D: plugins.rst main stage]";

/// The 64-bit installer's folder.
pub(crate) const INSTALL_FOLDER: &str = r"Program Files\Cloudbase Solutions\Cloudbase-Init";
/// The x86 installer's folder on 64-bit Windows.
pub(crate) const INSTALL_FOLDER_X86: &str =
    r"Program Files (x86)\Cloudbase Solutions\Cloudbase-Init";

/// Cloudbase-Init's configuration keys in SOFTWARE: native, and an x86 build's on 64-bit Windows.
const CONFIG_KEYS: [&str; 2] = [
    r"Cloudbase Solutions\Cloudbase-Init",
    r"WOW6432Node\Cloudbase Solutions\Cloudbase-Init",
];
const PLUGINS: &str = "Plugins";

/// Forgets which Cloudbase-Init plugins already ran.
pub struct CloudbaseInit;

impl Provider for CloudbaseInit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        if !CloudAgent::CloudbaseInit.is_installed(ctx.image)? {
            return Ok(());
        }
        let mut forgotten = 0;
        for config_key in CONFIG_KEYS {
            for key in plugin_status_keys(ctx.image, config_key)? {
                ctx.source(SOURCE).delete_key(SOFTWARE, &key)?;
                forgotten += 1;
            }
        }
        ctx.note(format!(
            "cloudbase-init is installed: {} its plugins run again on the clone's first boot",
            if forgotten == 0 {
                "no plugin status saved,".to_string()
            } else {
                format!("{forgotten} saved plugin status key(s) deleted,")
            }
        ));
        for folder in [INSTALL_FOLDER, INSTALL_FOLDER_X86] {
            let unattend = join(folder, r"conf\Unattend.xml");
            if ctx.image.exists(&unattend)? && ctx.answer.is_none() {
                ctx.note(format!(
                    "cloudbase-init's installer prepares images with its own answer file \
                     ({unattend}), which runs cloudbase-init during specialize; give it to \
                     reseal as the answer file if clones should run it so"
                ));
            }
        }
        Ok(())
    }
}

/// The keys to delete below `config_key`: the `Plugins` key of each instance (the instance's
/// key itself when it holds nothing else) and a `Plugins` key directly below it.
fn plugin_status_keys(image: &mut Image, config_key: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for name in image.subkey_names(SOFTWARE, config_key)? {
        let instance = join(config_key, &name);
        if name.eq_ignore_ascii_case(PLUGINS) {
            keys.push(instance);
            continue;
        }
        let subkeys = image.subkey_names(SOFTWARE, &instance)?;
        if !subkeys.iter().any(|s| s.eq_ignore_ascii_case(PLUGINS)) {
            continue;
        }
        if subkeys.len() == 1 && image.values(SOFTWARE, &instance)?.is_empty() {
            keys.push(instance);
        } else {
            keys.push(join(&instance, PLUGINS));
        }
    }
    Ok(keys)
}
