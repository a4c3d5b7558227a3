#!/bin/sh
# peer-local.sh is the peer of kiln's local backend in scripts/bench-local.sh:
# the example recipe of `kiln init` built, boot-tested and copied by hand,
# the way one would without kiln (mmdebstrap + sfdisk + mkfs + mtools +
# qemu-img + qemu). Same image: Debian bookworm minbase with the same
# packages and the same small initrd, the recipe's provisioning steps (scripts
# and files), a GPT disk with an ESP holding systemd-boot and an ext4 root, a
# qcow2 export; the recipe's
# tests run in the booted guest, under OVMF with the same qemu machine as
# kiln's boot test, and their result comes back on the serial console.
# What it leaves out is what kiln adds: tags, records, a journal, checks,
# verified copies, cleanup after a crash.
#
#   peer-local.sh bootstrap WORK        the base root filesystem (WORK/base)
#   peer-local.sh build WORK PROJECT    provision a copy of the base, write the disk and the export
#                                       (its "provision" phase includes the copy)
#   peer-local.sh test WORK PROJECT     boot the disk, run PROJECT/tests/boot.sh in it
#   peer-local.sh replicate WORK N      copy disk and export to N region directories
#
# Each prints "phase NAME SECONDS" for its parts. Needs root and what
# `make deps` installs. Environment: MIRROR (default deb.debian.org).
set -eu

mirror=${MIRROR:-http://deb.debian.org/debian}
packages=ca-certificates,dbus,kmod,less,linux-image-amd64,python3,systemd-sysv,udev
# Fixed identities, as a script written once would have them.
root_partuuid=5b7d3c1e-0f55-4d1c-9a3e-6c2f0b8d9e11
esp_partuuid=0c2b6a4d-8e1f-4b7a-a5d2-3f9e1c7b4a22
disk_size=2G

now() { date +%s.%N; }
phase() { awk -v n="$1" -v a="$2" -v b="$(now)" 'BEGIN { printf "phase %s %.2f\n", n, b - a }'; }

cmd=$1 work=$2
mkdir -p "$work"
work=$(cd "$work" && pwd)

case $cmd in
bootstrap)
	t=$(now)
	rm -rf "$work/base"
	# The same small initrd as kiln's images: the root disk's drivers only.
	mkdir -p "$work/initramfs"
	echo MODULES=list >"$work/initramfs/kiln.conf"
	cat >"$work/initramfs/kiln-storage" <<'HOOK'
#!/bin/sh
case "$1" in prereqs) exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_pci virtio_blk virtio_scsi nvme xen-blkfront \
	ahci ata_piix sd_mod vmw_pvscsi mptspi hv_storvsc hv_vmbus ext4
HOOK
	mmdebstrap --mode=root --variant=minbase --format=directory --include=$packages \
		--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"' \
		--essential-hook="upload $work/initramfs/kiln.conf /etc/initramfs-tools/conf.d/kiln.conf" \
		--essential-hook="upload $work/initramfs/kiln-storage /etc/initramfs-tools/hooks/kiln-storage" \
		--essential-hook='chmod 0755 "$1/etc/initramfs-tools/hooks/kiln-storage"' \
		--customize-hook='echo localhost >"$1/etc/hostname"' \
		--customize-hook='chroot "$1" apt-get clean' \
		bookworm "$work/base" "$mirror" >"$work/bootstrap.log" 2>&1
	rm -rf "$work/base/dev/"*
	sync
	phase bootstrap "$t"
	;;

build)
	proj=$(cd "$3" && pwd)
	t=$(now)
	rm -rf "$work/rootfs" "$work/disk.raw" "$work/disk.qcow2" "$work/esp"
	cp -a "$work/base" "$work/rootfs"
	phase copy-base "$t"

	mkdir -p "$work/esp"
	cat >"$work/esp/fstab" <<EOF
PARTUUID=$root_partuuid / ext4 rw,errors=remount-ro 0 1
PARTUUID=$esp_partuuid /boot/efi vfat umask=0077,nofail 0 2
EOF
	# The boot test: a unit that runs the recipe's test after boot and
	# prints the result on the console, then powers off.
	cat >"$work/esp/peer-test.service" <<'EOF'
[Unit]
Description=peer boot test
DefaultDependencies=no
After=basic.target multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/usr/local/lib/peer/boot.sh >/dev/console 2>&1 && r=PASS || r=FAIL; printf "\\nPEER-RESULT: %%s\\n" $r >/dev/console; poweroff -f'
[Install]
WantedBy=multi-user.target
EOF
	mmdebstrap --mode=root --variant=custom --format=directory --skip=update --skip=check/empty \
		--customize-hook='mkdir -p "$1/boot/efi" "$1/etc/kiln-demo" "$1/usr/local/lib/peer"' \
		--customize-hook="upload $work/esp/fstab /etc/fstab" \
		--customize-hook="copy-in $proj/scripts/provision.sh /tmp" \
		--customize-hook='chroot "$1" sh -e /tmp/provision.sh' \
		--customize-hook="upload $proj/files/welcome.txt /etc/kiln-demo/welcome.txt" \
		--customize-hook='chmod 0644 "$1/etc/kiln-demo/welcome.txt"' \
		--customize-hook='mkdir -p "$1/opt/kiln-demo-web"' \
		--customize-hook="sync-in $proj/files/web /opt/kiln-demo-web" \
		--customize-hook="copy-in $proj/scripts/web.sh /tmp" \
		--customize-hook="chroot \"\$1\" env KILN_VERSION=peer-$(date -u +%Y%m%d%H%M%S) sh -e /tmp/web.sh" \
		--customize-hook="upload $proj/tests/boot.sh /usr/local/lib/peer/boot.sh" \
		--customize-hook='chmod 0755 "$1/usr/local/lib/peer/boot.sh"' \
		--customize-hook="upload $work/esp/peer-test.service /etc/systemd/system/peer-test.service" \
		--customize-hook='chroot "$1" systemctl enable peer-test.service' \
		bookworm "$work/rootfs" "$mirror" >"$work/provision.log" 2>&1
	rm -rf "$work/rootfs/dev/"*
	phase provision "$t"

	t=$(now)
	truncate -s $disk_size "$work/disk.raw"
	sfdisk --quiet "$work/disk.raw" <<EOF
label: gpt
start=2048, size=532480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_partuuid
start=534528, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$root_partuuid
EOF
	root_sectors=$(sfdisk --dump "$work/disk.raw" | sed -n 's/.*start= *534528, size= *\([0-9]*\),.*/\1/p')
	mkfs.ext4 -q -F -b 4096 -L root -d "$work/rootfs" -E offset=$((534528 * 512)) \
		"$work/disk.raw" $((root_sectors / 2))k
	kernel=$(basename "$(ls "$work"/rootfs/boot/vmlinuz-* | tail -1)" | sed 's/^vmlinuz-//')
	printf 'default peer.conf\ntimeout 0\neditor no\n' >"$work/esp/loader.conf"
	printf 'title Debian (peer)\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTUUID=%s rw console=tty0 console=ttyS0,115200 no_timer_check\n' \
		$root_partuuid >"$work/esp/peer.conf"
	mkfs.vfat -F 32 -n ESP --offset 2048 "$work/disk.raw" $((532480 / 2)) >/dev/null 2>&1
	export MTOOLS_SKIP_CHECK=1
	esp="$work/disk.raw@@1048576"
	mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
	mcopy -i "$esp" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI
	mcopy -i "$esp" "$work/esp/loader.conf" ::/loader/loader.conf
	mcopy -i "$esp" "$work/esp/peer.conf" ::/loader/entries/peer.conf
	mcopy -i "$esp" "$work/rootfs/boot/vmlinuz-$kernel" ::/vmlinuz
	mcopy -i "$esp" "$work/rootfs/boot/initrd.img-$kernel" ::/initrd.img
	phase disk "$t"

	t=$(now)
	qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
	sync
	phase export "$t"
	;;

test)
	t=$(now)
	rm -f "$work/overlay.qcow2" "$work/console.log"
	qemu-img create -q -f qcow2 -F raw -b "$work/disk.raw" "$work/overlay.qcow2"
	cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
	qemu-system-x86_64 -nodefaults -display none -no-reboot -machine q35 -accel tcg -m 1024 -smp 2 \
		-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
		-drive if=pflash,format=raw,unit=1,file="$work/vars.fd" \
		-drive if=virtio,format=qcow2,file="$work/overlay.qcow2" \
		-chardev file,id=console,path="$work/console.log" -serial chardev:console 2>"$work/qemu.log" &
	qemu=$!
	result=
	while kill -0 $qemu 2>/dev/null; do
		[ ! -f "$work/console.log" ] ||
			result=$(tr -d '\r' <"$work/console.log" | sed -n 's/^PEER-RESULT: //p' | head -1)
		[ -z "$result" ] || break
		sleep 0.1
	done
	kill $qemu 2>/dev/null || true
	wait $qemu 2>/dev/null || true
	phase boot "$t"
	[ "$result" = PASS ] || { echo "boot test: ${result:-no result}" >&2; exit 1; }
	;;

replicate)
	t=$(now)
	for i in $(seq 1 "$3"); do
		rm -rf "$work/region-$i"
		mkdir -p "$work/region-$i"
		cp --reflink=auto --sparse=always "$work/disk.raw" "$work/disk.qcow2" "$work/region-$i/"
	done
	sync
	phase replicate "$t"
	;;

*)
	echo "usage: $0 bootstrap|build|test|replicate WORK [PROJECT|N]" >&2
	exit 2
	;;
esac
