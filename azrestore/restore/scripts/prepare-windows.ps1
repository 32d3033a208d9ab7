<#
.SYNOPSIS
azrestore: prepare a restored Windows OS disk for Azure, on a Windows helper VM it is attached to.

.DESCRIPTION
Run by Azure Run Command (RunPowerShellScript) on the helper, as SYSTEM, with Windows
PowerShell 5.1. The restored disk (-Lun: its LUN as a data disk of the helper, or
-DiskNumber) is brought online, its Windows volume found, and its SYSTEM and SOFTWARE hives
loaded offline. Then, following Azure's checklist for a Windows VHD:
- SAN policy OnlineAll (partmgr SanPolicy = 1), so that data disks come online;
- RealTimeIsUniversal = 1: Azure keeps the hardware clock in UTC;
- Remote Desktop on: fDenyTSConnections = 0, RDP-Tcp PortNumber = 3389, TermService not disabled;
- the firewall rules for Remote Desktop and WinRM enabled;
- the Azure VM agent: when missing, installed offline as Microsoft documents it ("Install
  the Azure VM Agent in offline mode"): the helper's WindowsAzure\GuestAgent_* folder and
  its service keys are copied; the agent starts at first boot. (SetupComplete.cmd runs
  only after Windows Setup, i.e. for generalized images, and RunOnce only at a logon: a
  restored disk gets neither.)
- boot configuration: recoveryenabled No and bootstatuspolicy IgnoreAllFailures, so that
  the first boot on new hardware does not stop in a recovery menu nobody can reach.
The hives are unloaded, drive letters added are removed and the disk is taken offline in
every case (finally). Idempotent: a second run changes nothing. Output: what changed, then
one last line AZRESTORE-RESULT {json}. Exit status 0 done (maybe with warnings), 1 failed.
#>
[CmdletBinding()]
param(
    [int]$Lun = -1,
    [int]$DiskNumber = -1
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

$SystemHive = 'AZRESTORE_SYSTEM'
$SoftwareHive = 'AZRESTORE_SOFTWARE'
$EspGuid = '{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}'
$Changes = New-Object System.Collections.Generic.List[string]
$Warnings = New-Object System.Collections.Generic.List[string]
$Notes = New-Object System.Collections.Generic.List[string]
$Loaded = New-Object System.Collections.Generic.List[string]
$AddedPaths = New-Object System.Collections.Generic.List[object]
$script:Disk = $null
$script:WindowsName = ''
$script:AgentState = 'unknown'

# Straight to stdout (Run Command's output), never into a function's return value.
function Say([string]$Text) { [Console]::Out.WriteLine($Text) }
function Changed([string]$What) { $Changes.Add($What); Say "changed: $What" }
function Note([string]$What) { $Notes.Add($What); Say "note: $What" }
function Warn([string]$What) { $Warnings.Add($What); Say "warning: $What" }

# Native tools: Windows PowerShell turns their stderr into errors under 'Stop'.
function Invoke-Native([string]$Exe, [string[]]$Arguments) {
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $output = & $Exe @Arguments 2>&1 | ForEach-Object { "$_" }
        $code = $LASTEXITCODE
    } finally {
        $ErrorActionPreference = $saved
    }
    return [pscustomobject]@{ Code = $code; Output = ($output -join "`n") }
}

# --- the disk --------------------------------------------------------------------------------

function Find-RestoredDisk {
    if ($DiskNumber -ge 0) {
        $found = Get-Disk -Number $DiskNumber
    } elseif ($Lun -ge 0) {
        # The helper's own disks (OS and resource disk) share a controller; data disks do not.
        $own = @(Get-Disk | Where-Object { $_.IsBoot -or $_.IsSystem } | ForEach-Object { $_.Number })
        $drives = @(Get-CimInstance Win32_DiskDrive)
        $ownPorts = @($drives | Where-Object { $own -contains $_.Index } | ForEach-Object { $_.SCSIPort })
        $hits = @($drives | Where-Object {
                $_.SCSILogicalUnit -eq $Lun -and $_.SCSITargetId -eq 0 -and $ownPorts -notcontains $_.SCSIPort
            } | Where-Object {
                -not (Get-Partition -DiskNumber $_.Index -ErrorAction SilentlyContinue | Get-Volume -ErrorAction SilentlyContinue |
                        Where-Object { $_.FileSystemLabel -eq 'Temporary Storage' })
            })
        if ($hits.Count -ne 1) { throw "cannot tell which disk is LUN $Lun ($($hits.Count) candidates); use -DiskNumber" }
        $found = Get-Disk -Number $hits[0].Index
    } else {
        throw 'give -Lun or -DiskNumber'
    }
    if ($found.IsBoot -or $found.IsSystem) { throw "disk $($found.Number) is the helper's own system disk" }
    return $found
}

function Open-Disk($Target) {
    if ($Target.IsOffline) {
        # A clone of one of the helper's disks: onlining would rewrite its signature and
        # break its boot configuration.
        if ("$($Target.OfflineReason)" -match 'Collision|^4$') {
            throw "disk $($Target.Number) has the same signature as a disk of the helper; use another helper"
        }
        Set-Disk -Number $Target.Number -IsOffline $false
    }
    if ($Target.IsReadOnly) { Set-Disk -Number $Target.Number -IsReadOnly $false }
}

function Get-FreeLetter {
    $used = @([System.IO.DriveInfo]::GetDrives() | ForEach-Object { $_.Name.Substring(0, 1).ToUpper() })
    foreach ($c in 'ZYXWVUTSRQPONMLKJIHGF'.ToCharArray()) {
        if ($used -notcontains [string]$c) { return [string]$c }
    }
    throw 'no free drive letter'
}

# The partition's root ("X:\"), giving it a drive letter for the time of the run if needed.
function Get-PartitionRoot($Partition) {
    $letter = ("$($Partition.DriveLetter)" -replace '[^A-Za-z]', '')
    if ($letter) { return "${letter}:\" }
    $letter = Get-FreeLetter
    try {
        Add-PartitionAccessPath -DiskNumber $Partition.DiskNumber -PartitionNumber $Partition.PartitionNumber -AccessPath "${letter}:\"
    } catch {
        # An EFI system partition refuses Add-PartitionAccessPath on some versions; diskpart does it.
        $commands = Join-Path $env:TEMP 'azrestore-diskpart.txt'
        Set-Content -Path $commands -Encoding ASCII -Value @(
            "select disk $($Partition.DiskNumber)", "select partition $($Partition.PartitionNumber)", "assign letter=$letter")
        $run = Invoke-Native 'diskpart.exe' @('/s', $commands)
        Remove-Item -Path $commands -Force
        if ($run.Code -ne 0) { throw "cannot give partition $($Partition.PartitionNumber) a drive letter: $($run.Output)" }
    }
    $AddedPaths.Add([pscustomobject]@{ Disk = $Partition.DiskNumber; Partition = $Partition.PartitionNumber; Path = "${letter}:\" })
    return "${letter}:\"
}

function Find-WindowsRoot($Target) {
    foreach ($partition in @(Get-Partition -DiskNumber $Target.Number | Where-Object { $_.Type -in 'Basic', 'IFS' })) {
        $root = Get-PartitionRoot $partition
        if (Test-Path -LiteralPath (Join-Path $root 'Windows\System32\config\SYSTEM')) { return $root }
    }
    throw "no Windows installation (Windows\System32\config\SYSTEM) on disk $($Target.Number)"
}

function Find-BcdStore($Target) {
    foreach ($partition in @(Get-Partition -DiskNumber $Target.Number)) {
        $isEsp = "$($partition.GptType)" -eq $EspGuid
        if (-not ($isEsp -or $partition.IsActive)) { continue }
        $root = Get-PartitionRoot $partition
        foreach ($store in 'EFI\Microsoft\Boot\BCD', 'Boot\BCD') {
            $path = Join-Path $root $store
            if (Test-Path -LiteralPath $path) { return $path }
        }
    }
    return $null
}

# --- the offline registry --------------------------------------------------------------------

function Mount-Hive([string]$Name, [string]$File) {
    if (Test-Path -LiteralPath "Registry::HKEY_LOCAL_MACHINE\$Name") {
        # Left loaded by an interrupted run.
        Invoke-Native 'reg.exe' @('unload', "HKLM\$Name") | Out-Null
    }
    $run = Invoke-Native 'reg.exe' @('load', "HKLM\$Name", $File)
    if ($run.Code -ne 0) { throw "reg load $File failed: $($run.Output)" }
    $Loaded.Add($Name)
}

function Dismount-Hives {
    # Registry handles held by .NET objects keep a hive loaded until collected.
    [GC]::Collect()
    [GC]::WaitForPendingFinalizers()
    foreach ($name in @($Loaded)) {
        for ($try = 0; $try -lt 10; $try++) {
            if ((Invoke-Native 'reg.exe' @('unload', "HKLM\$name")).Code -eq 0) { [void]$Loaded.Remove($name); break }
            Start-Sleep -Seconds 2
            [GC]::Collect()
        }
    }
    if ($Loaded.Count -gt 0) { Warn "could not unload $($Loaded -join ', ')" }
}

# Set-RegValue KEY NAME VALUE KIND WHAT: set it unless it already has that value and kind.
function Set-RegValue([string]$Key, [string]$Name, $Value, [string]$Kind, [string]$What) {
    if (-not (Test-Path -LiteralPath $Key)) { New-Item -Path $Key -Force | Out-Null }
    $item = Get-Item -LiteralPath $Key
    try {
        $same = ($item.GetValueNames() -contains $Name) -and ("$($item.GetValueKind($Name))" -eq $Kind) -and
        ("$($item.GetValue($Name))" -eq "$Value")
    } finally {
        $item.Close()
    }
    if ($same) { return }
    New-ItemProperty -LiteralPath $Key -Name $Name -Value $Value -PropertyType $Kind -Force | Out-Null
    Changed $What
}

function Get-RegValue([string]$Key, [string]$Name) {
    if (-not (Test-Path -LiteralPath $Key)) { return $null }
    $item = Get-Item -LiteralPath $Key
    try { return $item.GetValue($Name) } finally { $item.Close() }
}

function Enable-FirewallRules([string]$ControlSet) {
    $key = "$ControlSet\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules"
    if (-not (Test-Path -LiteralPath $key)) { Warn 'firewall: no rules in the registry; allow RDP (3389) and WinRM yourself'; return }
    $item = Get-Item -LiteralPath $key
    try {
        $rules = @{}
        foreach ($name in $item.GetValueNames()) { $rules[$name] = [string]$item.GetValue($name) }
    } finally {
        $item.Close()
    }
    $rdp = 0
    foreach ($name in @($rules.Keys | Sort-Object)) {
        $isRdp = $name -match '^RemoteDesktop-(UserMode-)?In-(TCP|UDP)$'
        if (-not ($isRdp -or $name -match '^WINRM-HTTP-In-TCP(-PUBLIC|-NoScope)?$')) { continue }
        if ($isRdp) { $rdp++ }
        if ($rules[$name] -match '\|Active=FALSE\|') {
            Set-ItemProperty -LiteralPath $key -Name $name -Value ($rules[$name] -replace '\|Active=FALSE\|', '|Active=TRUE|')
            Changed "firewall: enabled rule $name"
        }
    }
    if ($rdp -eq 0) { Warn 'firewall: no Remote Desktop rule found; allow TCP 3389 yourself' }
}

# The agent, copied from this helper (Microsoft's offline install): its newest
# GuestAgent_* folder, and the service keys with SYSTEM\CurrentControlSet as the restored
# hive's control set.
function Install-Agent([string]$WindowsRoot, [string]$ControlSet, [string]$ControlSetName) {
    if (Test-Path -LiteralPath "$ControlSet\Services\WindowsAzureGuestAgent") {
        $script:AgentState = 'present'
        Note 'agent: the Azure VM agent is installed'
        return
    }
    $source = Get-ChildItem -Path "$env:SystemDrive\WindowsAzure" -Directory -Filter 'GuestAgent_*' -ErrorAction SilentlyContinue |
        Sort-Object -Descending -Property @{ Expression = {
                try { [version]($_.Name -replace '^GuestAgent_([0-9.]+).*$', '$1') } catch { [version]'0.0' } } } |
        Select-Object -First 1
    if (-not $source -or -not (Test-Path -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Services\WindowsAzureGuestAgent')) {
        $script:AgentState = 'missing'
        Warn 'agent: not installed, and this helper has no agent to copy; install it in the VM (https://go.microsoft.com/fwlink/?LinkID=394789)'
        return
    }
    $target = Join-Path $WindowsRoot 'WindowsAzure'
    New-Item -Path $target -ItemType Directory -Force | Out-Null
    if (-not (Test-Path -LiteralPath (Join-Path $target $source.Name))) {
        Copy-Item -LiteralPath $source.FullName -Destination $target -Recurse -Force
        Changed "agent: copied $($source.Name) to \WindowsAzure"
    }
    # The key last: its presence means installed (a failed copy is retried by the next run).
    foreach ($service in 'RdAgent', 'WindowsAzureGuestAgent') {
        if (-not (Test-Path -LiteralPath "HKLM:\SYSTEM\CurrentControlSet\Services\$service")) { continue }
        $file = Join-Path $env:TEMP "azrestore-$service.reg"
        $run = Invoke-Native 'reg.exe' @('export', "HKLM\SYSTEM\CurrentControlSet\Services\$service", $file, '/y')
        if ($run.Code -ne 0) { throw "reg export $service failed: $($run.Output)" }
        $text = [System.IO.File]::ReadAllText($file)
        $text = $text.Replace('[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\', "[HKEY_LOCAL_MACHINE\$SystemHive\$ControlSetName\")
        [System.IO.File]::WriteAllText($file, $text, [System.Text.Encoding]::Unicode)
        $run = Invoke-Native 'reg.exe' @('import', $file)
        Remove-Item -LiteralPath $file -Force
        if ($run.Code -ne 0) { throw "reg import $service failed: $($run.Output)" }
        Changed "agent: registered the $service service"
    }
    $script:AgentState = 'installed'
    Note 'agent: the Azure VM agent needs .NET Framework 4 in the restored Windows'
}

function Set-BootConfiguration([string]$Store) {
    $enum = Invoke-Native 'bcdedit.exe' @('/store', $Store, '/enum', '{default}')
    if ($enum.Code -ne 0) { Warn "boot: bcdedit cannot read $Store ($($enum.Output))"; return }
    foreach ($setting in @(@('recoveryenabled', 'No'), @('bootstatuspolicy', 'IgnoreAllFailures'))) {
        if ($enum.Output -match "(?im)^$($setting[0])\s+$($setting[1])\s*$") { continue }
        $run = Invoke-Native 'bcdedit.exe' @('/store', $Store, '/set', '{default}', $setting[0], $setting[1])
        if ($run.Code -ne 0) { throw "bcdedit /set $($setting[0]) $($setting[1]) failed: $($run.Output)" }
        Changed "boot: $($setting[0]) $($setting[1])"
    }
}

# --- the result ------------------------------------------------------------------------------

# Run Command returns only the last 4096 bytes of output: the line is cut to fit.
function Write-Result([bool]$Ok, [string]$Failure) {
    $cut = $false
    while ($true) {
        $json = [ordered]@{
            ok = $Ok; error = $Failure; windows = $script:WindowsName
            disk = $(if ($script:Disk) { $script:Disk.Number } else { $null })
            changes = $Changes.ToArray(); warnings = $Warnings.ToArray(); notes = $Notes.ToArray()
            agent = $script:AgentState; truncated = $cut
        } | ConvertTo-Json -Compress -Depth 3
        if ($json.Length -le 3800) { break }
        $cut = $true
        if ($Notes.Count -gt 0) { $Notes.RemoveAt($Notes.Count - 1) }
        elseif ($Changes.Count -gt 5) { $Changes.RemoveAt($Changes.Count - 1) }
        elseif ($Warnings.Count -gt 5) { $Warnings.RemoveAt($Warnings.Count - 1) }
        else { break }
    }
    Say "AZRESTORE-RESULT $json"
}

# --- main ------------------------------------------------------------------------------------

$failure = ''
try {
    $script:Disk = Find-RestoredDisk
    Say "disk $($script:Disk.Number): $($script:Disk.FriendlyName), $([math]::Round($script:Disk.Size / 1GB, 1)) GiB"
    Open-Disk $script:Disk
    $windows = Find-WindowsRoot $script:Disk
    Mount-Hive $SystemHive (Join-Path $windows 'Windows\System32\config\SYSTEM')
    Mount-Hive $SoftwareHive (Join-Path $windows 'Windows\System32\config\SOFTWARE')
    $system = "Registry::HKEY_LOCAL_MACHINE\$SystemHive"
    $software = "Registry::HKEY_LOCAL_MACHINE\$SoftwareHive"
    $version = "$software\Microsoft\Windows NT\CurrentVersion"
    $script:WindowsName = "$(Get-RegValue $version 'ProductName') $(Get-RegValue $version 'CurrentBuild')".Trim()
    Say "preparing $($script:WindowsName) at $windows"
    $current = Get-RegValue "$system\Select" 'Current'
    if (-not $current) { throw 'the SYSTEM hive has no Select\Current' }
    $controlSetName = 'ControlSet{0:D3}' -f [int]$current
    $cs = "$system\$controlSetName"
    if ("$(Get-RegValue $version 'SystemRoot')" -notmatch '^C:') { Warn 'Windows is not on C: in this image; the agent and paths assume C:' }

    Set-RegValue "$cs\Services\partmgr\Parameters" 'SanPolicy' 1 'DWord' 'storage: SAN policy OnlineAll'
    Set-RegValue "$cs\Control\TimeZoneInformation" 'RealTimeIsUniversal' 1 'DWord' 'time: RealTimeIsUniversal 1'
    Set-RegValue "$cs\Control\Terminal Server" 'fDenyTSConnections' 0 'DWord' 'rdp: connections allowed'
    Set-RegValue "$cs\Control\Terminal Server\WinStations\RDP-Tcp" 'PortNumber' 3389 'DWord' 'rdp: port 3389'
    if ((Get-RegValue "$cs\Services\TermService" 'Start') -eq 4) {
        Set-RegValue "$cs\Services\TermService" 'Start' 3 'DWord' 'rdp: Remote Desktop Services no longer disabled'
    }
    $policy = "$software\Policies\Microsoft\Windows NT\Terminal Services"
    if ((Get-RegValue $policy 'fDenyTSConnections') -eq 1) {
        Set-RegValue $policy 'fDenyTSConnections' 0 'DWord' 'rdp: the policy denying connections lifted'
    }
    Enable-FirewallRules $cs
    if (Test-Path -LiteralPath "$software\Policies\Microsoft\WindowsFirewall") {
        Note 'firewall: group policy settings found; they may override the local rules'
    }
    Install-Agent $windows $cs $controlSetName

    $store = Find-BcdStore $script:Disk
    if ($store) { Set-BootConfiguration $store } else { Warn 'boot: no BCD store found on the disk' }
    Say "summary: $($Changes.Count) change(s), $($Warnings.Count) warning(s)"
} catch {
    $failure = "$($_.Exception.Message)"
    [Console]::Error.WriteLine("error: $failure")
} finally {
    Dismount-Hives
    foreach ($path in $AddedPaths) {
        try {
            Remove-PartitionAccessPath -DiskNumber $path.Disk -PartitionNumber $path.Partition -AccessPath $path.Path
        } catch {
            Warn "could not remove the drive letter $($path.Path)"
        }
    }
    if ($script:Disk) {
        try { Set-Disk -Number $script:Disk.Number -IsOffline $true } catch { Warn "could not take disk $($script:Disk.Number) offline" }
    }
}
Write-Result ($failure -eq '') $failure
if ($failure) { exit 1 }
exit 0
