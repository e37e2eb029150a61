# A Packer build that generalizes the disk it made, offline, instead of running Sysprep inside the
# guest before shutdown. Hyper-V (hyperv-iso) writes a VHDX; the QEMU builder with format = "raw"
# writes a raw disk, or qcow2 by default; reseal reads all three, and VMDK. The sources are the ones
# of your template; only the post-processor is reseal's.

variable "output_directory" {
  type    = string
  default = "output-windows"
}

variable "vm_name" {
  type    = string
  default = "windows-2022"
}

build {
  sources = ["source.hyperv-iso.windows"]

  post-processor "shell-local" {
    # generalize-image.sh (docs/pipelines) runs reseal generalize --json, keeps the document
    # beside the image and fails the build unless reseal verify finds the image armed for OOBE.
    inline = [
      "docs/pipelines/generalize-image.sh '${var.output_directory}/Virtual Hard Disks/${var.vm_name}.vhdx'",
    ]
  }
}
